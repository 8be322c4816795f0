"""A trader sees only their own declarations, through every route of every slice that takes a declaration's
reference: the routes are read from the OpenAPI document, so a route added later is covered without
editing this test."""

from __future__ import annotations

import re

import pytest

from tests.clearance.conftest import Env, declaration, watch_phones

LRN = "PRIVATE-LRN-7731"
"""Only the filer (and customs) may see it: it must not appear in any answer to another trader."""

REFERENCE_PARAMS = re.compile(r"\{(reference|declaration_ref)\}")

BODIES = {
    ("PUT", "/declarations/{reference}"): {"declaration": declaration(lrn=LRN), "reason": "Another party's amendment"},
    ("POST", "/declarations/{reference}/trade-documents"): {
        "type": "bill_of_lading",
        "data": {"number": "EGLV000123456", "consignee": {"name": "Another Importer"}},
    },
    ("POST", "/declarations/{reference}/decisions"): {"action": "release"},
    ("POST", "/declarations/{reference}/inspection"): {"result": "not_found"},
}
"""Bodies the routes accept, so that what refuses the stranger is the access check, not the body's shape."""


def _declaration_routes(env: Env) -> list[tuple[str, str]]:
    paths = env.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        if REFERENCE_PARAMS.search(path) and not path.startswith("/manifests/")  # a manifest's own reference
        for method in operations
    ]
    assert len(routes) >= 10, routes  # the clearance, manifests, trade documents, documents and X-ray routes
    return sorted(routes)


def _timeline(env: Env, ref: str) -> list[str]:
    r = env.client.get(f"/declarations/{ref}/timeline", headers=env.h("officer"))
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["events"]]


@pytest.mark.parametrize("stranger", ["trader2", "carrier"])
def test_no_route_that_takes_a_declaration_shows_or_changes_it_for_another_party(env: Env, stranger: str) -> None:
    watch_phones(env)  # C3: the declaration stays open to decisions, inspections and amendments
    filed = env.client.post("/declarations", json=declaration(lrn=LRN), headers=env.h("trader"))
    assert filed.status_code == 201, filed.text
    ref = filed.json()["reference"]
    before = _timeline(env, ref)
    for method, path in _declaration_routes(env):
        url = REFERENCE_PARAMS.sub(ref, path)
        r = env.client.request(method, url, json=BODIES.get((method, path), {}), headers=env.h(stranger))
        # refused as unknown or forbidden, before anything else about the request (an upload without its file)
        assert r.status_code in (403, 404), (method, url, r.status_code, r.text[:300])
        assert LRN not in r.text, (method, url)
    assert _timeline(env, ref) == before  # nothing was decided, inspected, amended or attached


def test_the_filer_reaches_the_declaration_through_the_clearance_routes(env: Env) -> None:
    """The control for the test above: the references it fills in are ones these routes know."""
    ref = env.client.post("/declarations", json=declaration(lrn=LRN), headers=env.h("trader")).json()["reference"]
    for path in ("/declarations/{reference}", "/declarations/{reference}/timeline"):
        r = env.client.get(REFERENCE_PARAMS.sub(ref, path), headers=env.h("trader"))
        assert r.status_code == 200 and LRN in r.text, (path, r.status_code)
