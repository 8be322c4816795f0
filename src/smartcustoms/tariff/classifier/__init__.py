"""Tariff classifier: goods descriptions (English or Chinese, trader words) to ranked tariff codes."""

from smartcustoms.tariff.classifier.model import Candidate, TariffClassifier

__all__ = ["Candidate", "TariffClassifier"]
