"""HTTP plumbing every slice's router uses: the caller's identity, role checks and error mapping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Forbidden, Problem, Unauthorized

SESSION_COOKIE = "sc_session"
_TOKEN_CACHE: dict[str, tuple[float, auth.Principal]] = {}
_TOKEN_TTL_S = 30.0


def forget_tokens() -> None:
    """Drop cached token look-ups (after a revocation, a role change)."""
    _TOKEN_CACHE.clear()


def _token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def principal(request: Request) -> auth.Principal:
    """FastAPI dependency: the authenticated caller, from a bearer token or the console cookie."""
    token = _token_from(request)
    if not token:
        raise Unauthorized(
            Problem(
                "missing_token",
                ("headers", "authorization"),
                "Authentication required: send 'Authorization: Bearer <token>'",
            )
        )
    cached = _TOKEN_CACHE.get(token)
    now = time.monotonic()
    if cached and cached[0] > now:
        return cached[1]
    with unit_of_work() as session:
        who = auth.authenticate(session, token)
    if len(_TOKEN_CACHE) > 10_000:
        _TOKEN_CACHE.clear()
    _TOKEN_CACHE[token] = (now + _TOKEN_TTL_S, who)
    return who


def require(*roles: auth.Role) -> Callable[..., auth.Principal]:
    """Dependency factory: the caller must hold one of `roles`."""

    def check(who: auth.Principal = Depends(principal)) -> auth.Principal:
        if who.role not in roles:
            raise Forbidden(
                Problem(
                    "forbidden_role",
                    (),
                    f"Role {who.role.value} may not do this; needs {', '.join(r.value for r in roles)}",
                )
            )
        return who

    return check


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def _problems_response(status: int, problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"status": status, "problems": problems})


def _loc_to_path(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    parts = [p for p in loc if p not in ("body",)]
    return tuple(p if isinstance(p, int) else str(p) for p in parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = _problems_response(exc.status, [p.as_dict() for p in exc.problems])
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            kind = err.get("type", "invalid")
            code = "malformed_json" if kind == "json_invalid" else kind
            problems.append(
                Problem(code, _loc_to_path(tuple(err.get("loc", ()))), str(err.get("msg", "invalid"))).as_dict()
            )
        return _problems_response(422, problems)


class BodyLimit:
    """ASGI middleware refusing request bodies over `max_bytes` with 413, before they reach a handler."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = (
            b'{"status":413,"problems":[{"code":"body_too_large","path":[],"loc":"$","message":"Request body over '
            + str(self.max_bytes).encode()
            + b' bytes"}]}'
        )
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
