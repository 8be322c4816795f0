"""Single window: other agencies' permits, advance cargo manifests, and trade-document cross-checks.

Three parts, each a sub-package with its own model, store, service, API, CLI and checks:
`permits`, `manifests` and `trade_documents`. The modules of this package gather them so the
platform mounts one slice.
"""
