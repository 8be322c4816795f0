"""The filing fast path: well-formed filings answered before the router, everything else handed on unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from smartcustoms.clearance import service
from smartcustoms.clearance.fastpath import FilingFastPath
from smartcustoms.platform.errors import DomainError, Problem
from tests.clearance.conftest import Env, declaration


class Downstream:
    """Stands in for the application behind the fast path: records what reached it and the body it read."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append(body)
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b"downstream"})


def call(
    app: Any,
    body: bytes,
    headers: dict[str, str],
    *,
    path: str = "/declarations",
    method: str = "POST",
    chunks: int = 1,
    query: str = "",
) -> tuple[int, dict[str, str], bytes]:
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    size = max(1, len(body) // chunks + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages: list[Message] = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)
    ]
    out: dict[str, Any] = {"headers": {}, "body": b""}

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            out["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["headers"], out["body"]


def json_headers(env: Env, user: str = "trader", **extra: str) -> dict[str, str]:
    return {"content-type": "application/json", **env.h(user), **extra}


def with_length(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    return headers | {"content-length": str(len(body))}


def test_a_well_formed_filing_never_reaches_the_router_and_answers_like_it(env: Env) -> None:
    downstream = Downstream()
    fast = FilingFastPath(downstream, max_bytes=1_000_000)
    body = orjson.dumps(declaration(lrn="FAST-1"))
    status, headers, raw = call(fast, body, with_length(body, json_headers(env)), chunks=3)
    assert downstream.calls == []
    assert status == 201
    out = orjson.loads(raw)
    assert headers["location"] == f"/declarations/{out['reference']}"
    assert headers["content-language"] == "en" and headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(raw)
    # the general route's own view of the same filing
    stored = env.client.get(f"/declarations/{out['reference']}", headers=env.h("trader")).json()
    assert stored["reference"] == out["reference"] and stored["lane"] == out["lane"]
    assert stored["total_due"] == out["total_due"] and stored["lane_reasons"] == out["lane_reasons"]
    # resubmitted unchanged: the first filing, 200; changed: a conflict in the application's error format
    status, _, raw2 = call(fast, body, with_length(body, json_headers(env)))
    assert status == 200 and orjson.loads(raw2)["reference"] == out["reference"]
    changed = orjson.dumps(declaration(lrn="FAST-1", invoice_total="12000.00"))
    status, headers, raw3 = call(fast, changed, with_length(changed, json_headers(env, **{"accept-language": "zh-TW"})))
    assert status == 409 and downstream.calls == []
    problem = orjson.loads(raw3)["problems"][0]
    assert problem["code"] == "duplicate_lrn" and headers["content-language"] == "zh-Hant"
    assert not problem["message"].isascii()


def test_the_caller_language_adds_the_localized_block(env: Env) -> None:
    fast = FilingFastPath(Downstream(), max_bytes=1_000_000)
    body = orjson.dumps(declaration(lrn="FAST-ZH"))
    status, headers, raw = call(fast, body, with_length(body, json_headers(env)), query="lang=zh-Hant")
    assert status == 201 and headers["content-language"] == "zh-Hant"
    localized = orjson.loads(raw)["localized"]
    assert localized["lang"] == "zh-Hant" and localized["lane_reasons"]


def test_everything_else_goes_to_the_application_with_its_body_intact(env: Env) -> None:
    downstream = Downstream()
    fast = FilingFastPath(downstream, max_bytes=10_000)
    good = orjson.dumps(declaration(lrn="FAST-2"))
    cases = [
        (b'{"lrn": ', with_length(b'{"lrn": ', json_headers(env))),  # malformed JSON
        (orjson.dumps({"lrn": 5}), with_length(orjson.dumps({"lrn": 5}), json_headers(env))),  # invalid filing
        (good, json_headers(env)),  # no length announced
        (good, with_length(good, {**env.h("trader"), "content-type": "text/plain"})),  # not JSON
        (good, {**with_length(good, json_headers(env)), "content-length": "5"}),  # more bytes than announced
    ]
    for body, headers in cases:
        status, _, raw = call(fast, body, headers, chunks=2)
        assert (status, raw) == (599, b"downstream"), headers
        assert downstream.calls[-1] == body
    big = b" " * 20_000 + good
    status, _, _ = call(fast, big, with_length(big, json_headers(env)))
    assert status == 599 and downstream.calls[-1] == big  # over the limit: the application's limit answers
    status, _, _ = call(fast, good, with_length(good, json_headers(env)), path="/declarations/X")
    assert status == 599
    status, _, _ = call(fast, b"", {}, method="GET")
    assert status == 599
    assert len(downstream.calls) == len(cases) + 3


def test_refusals_after_parsing_use_the_application_error_format(env: Env) -> None:
    fast = FilingFastPath(Downstream(), max_bytes=1_000_000)
    body = orjson.dumps(declaration(lrn="FAST-3"))
    status, headers, raw = call(fast, body, with_length(body, {"content-type": "application/json"}))
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert orjson.loads(raw)["problems"][0]["code"] == "missing_token"
    status, _, raw = call(fast, body, with_length(body, json_headers(env, user="officer")))
    assert status == 403 and orjson.loads(raw)["problems"][0]["code"] == "forbidden_role"


def test_through_the_whole_application_bad_filings_still_list_every_problem(env: Env) -> None:
    bad = declaration(lrn="FAST-4", currency="XYZ")
    bad["items"][0]["tariff_code"] = "0000"
    r = env.client.post("/declarations", json=bad, headers=env.h("trader"))
    assert r.status_code == 422
    paths = {p["loc"] for p in r.json()["problems"]}
    assert "$.currency" in paths and any(p.startswith("$.items[0]") for p in paths)


def test_a_resubmission_gets_its_first_filing_even_if_todays_rules_refuse_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = declaration(lrn="FAST-5")
    first = env.client.post("/declarations", json=body, headers=env.h("trader"))
    assert first.status_code == 201

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise DomainError([Problem("rate_missing", ("currency",), "No exchange rate today")])

    monkeypatch.setattr(service, "prepare", refuse)
    again = env.client.post("/declarations", json=body, headers=env.h("trader"))
    assert again.status_code == 200 and again.json()["reference"] == first.json()["reference"]
    changed = env.client.post("/declarations", json=body | {"invoice_total": "1.00"}, headers=env.h("trader"))
    assert changed.status_code == 409  # same LRN, other content: refused as a duplicate
    fresh = env.client.post("/declarations", json=declaration(lrn="FAST-6"), headers=env.h("trader"))
    assert fresh.status_code == 422 and fresh.json()["problems"][0]["code"] == "rate_missing"
