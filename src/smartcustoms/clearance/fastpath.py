"""`POST /declarations` answered without FastAPI's router: the busiest route of the platform.

A filing over the general route paid about a millisecond of CPU in routing (matching ~300 routes one by
one), dependency solving and two thread hand-offs, a third of its cost. This ASGI layer answers well-formed
filings itself with one hop to a worker thread (parse, authenticate) and awaits the group committer's
answer on the event loop (validated, assessed and laned with the filings around it, then committed),
holding no thread meanwhile.

Anything else goes to the full application unchanged: other routes, bodies without a length or over
the limit, non-JSON bodies, and bodies that fail validation (replayed, so error answers are the
application's own). Problems found after validation (role, duplicate LRN, refusals) are answered with the
application's error format.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcustoms.clearance import views
from smartcustoms.clearance.committer import committer
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform import i18n
from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.web import client_addr, domain_error_response, principal

PATH = "/declarations"
FILING_THREADS = 8
"""Threads parsing filings and authenticating their filers at once. More only queue on the interpreter lock
(32 clients on the general thread pool also churned through database connections when these threads
prepared filings themselves)."""

_executor: ThreadPoolExecutor | None = None


def _filing_threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(FILING_THREADS, thread_name_prefix="filing")
    return _executor


Answer = tuple[dict[str, Any], bool]


def filing_response(request: Request, out: dict[str, Any], created: bool, language: str | None) -> dict[str, Any]:
    """Status, headers and body of a filing's answer (the general route and this one answer alike)."""
    lang = i18n.choose(
        [
            request.query_params.get("lang"),
            i18n.from_accept_language(request.headers.get("accept-language")),
            language,
        ]
    )
    if lang != i18n.DEFAULT:  # the hot path stays as it was for English readers
        out = out | {"localized": views.localised_view(out, lang)}
    return {
        "status": 201 if created else 200,
        "headers": {"Location": f"{PATH}/{out['reference']}", "Content-Language": lang},
        "body": orjson.dumps(out, default=str),
    }


class FilingFastPath:
    """ASGI middleware in front of the application; see the module docstring."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        content_type = _header(scope, b"content-type") or b""
        if (
            length is None
            or not length.isdigit()
            or int(length) > self.max_bytes
            or content_type.split(b";")[0].strip().lower() != b"application/json"
        ):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive, int(length))
        if more is not None:  # the body did not end where its length said: the application decides
            await self.app(scope, _replay(body, more, receive), send)
            return
        request = Request(scope)
        try:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[Outcome] = loop.create_future()
            _filing_threads().submit(_file, loop, waiter, request, body)
            outcome = await waiter
            if outcome is None:
                await self.app(scope, _replay(body, None, receive), send)
                return
            out, created, language = outcome
        except DomainError as exc:
            response = domain_error_response(request, exc)
            await response(scope, receive, send)
            return
        answer = filing_response(request, out, created, language)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer["body"])).encode())]
        headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in answer["headers"].items()]
        await send({"type": "http.response.start", "status": answer["status"], "headers": headers})
        await send({"type": "http.response.body", "body": answer["body"]})


Outcome = tuple[dict[str, Any], bool, str | None] | None
"""A filing's answer, created or not, and the filer's language; None: not a valid declaration."""


def _file(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Outcome], request: Request, body: bytes) -> None:
    """In a worker thread: begin the filing and settle `waiter` once, on the event loop, when the group
    committer answers (one hand-back per filing: the loop's future chaining was a fifth of its time)."""

    def settle(result: Outcome = None, error: BaseException | None = None) -> None:
        if waiter.done():  # the client went away meanwhile
            return
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(result)

    try:
        begun = _begin(request, body)
    except BaseException as exc:  # handed to the request's task, which raises it there
        _hand_back(loop, settle, None, exc)
        return
    if begun is None:
        _hand_back(loop, settle, None)
        return
    future, language = begun

    def answered(done: Future[Answer]) -> None:
        error = done.exception()
        if error is not None:
            _hand_back(loop, settle, None, error)
        else:
            out, created = done.result()
            _hand_back(loop, settle, (out, created, language))

    future.add_done_callback(answered)


def _hand_back(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed (server shut down): nobody waits any more
        loop.call_soon_threadsafe(settle, *args)


def _begin(request: Request, body: bytes) -> tuple[Future[Answer], str] | None:
    """In a worker thread: the filing parsed, its filer authenticated and the filing begun; None when the
    body is not a valid declaration (the application then answers with its own validation report)."""
    try:
        decl = DeclarationIn.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None
    who = principal(request)
    return committer().begin(who, decl, remote_addr=client_addr(request)), who.language


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


async def _read(receive: Receive, length: int) -> tuple[bytes, Message | None]:
    """The request body; with the message that broke the expectation (more bytes than announced, a
    disconnect), if any."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > length:
            return b"".join(chunks), {"type": "http.request", "body": b"", "more_body": message.get("more_body", False)}
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then whatever was pending, then the real stream."""
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": pending is not None}]
    if pending is not None:
        queue.append(pending)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
