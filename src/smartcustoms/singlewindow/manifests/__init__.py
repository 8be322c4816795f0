"""Advance cargo information (manifests) and their matching to declarations."""
