"""Shared by the single window's language tests: the Chinese request header and problem helpers."""

from __future__ import annotations

from typing import Any

ZH = {"Accept-Language": "zh-TW,zh;q=0.9"}


def problems(r: Any) -> list[tuple[str, str]]:
    """(code, path) of each problem: the same in every language."""
    return [(p["code"], p["loc"]) for p in r.json()["problems"]]


def messages(r: Any) -> dict[str, str]:
    return {p["loc"]: p["message"] for p in r.json()["problems"]}
