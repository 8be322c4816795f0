"""HTTP plumbing every slice's router uses: the caller's identity, role checks and error mapping.

Error responses speak the caller's language: `?lang=`, else `Accept-Language`, else the signed-in
user's stored language (codes and paths never change; only each problem's `message` does).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcustoms.platform import auth, i18n
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Forbidden, Problem, Unauthorized
from smartcustoms.platform.i18n import t
from smartcustoms.platform.i18n.validation import validation_problems

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
                t("Authentication required: send 'Authorization: Bearer <token>'"),
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
                    t(
                        "Role {role} may not do this; needs {roles}",
                        role=who.role.value,
                        roles=", ".join(r.value for r in roles),
                    ),
                )
            )
        return who

    return check


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_language(request: Request) -> str:
    """The caller's language: `?lang=`, else `Accept-Language`, else the signed-in user's stored language.

    The stored language costs a token look-up (cached) only when the request names no language.
    """
    asked = i18n.normalise(request.query_params.get("lang")) or i18n.from_accept_language(
        request.headers.get("accept-language")
    )
    if asked:
        return asked
    token = _token_from(request)
    if token:
        cached = _TOKEN_CACHE.get(token)
        if cached is not None:
            return i18n.choose([cached[1].language])
        try:
            with unit_of_work() as session:
                return i18n.choose([auth.authenticate(session, token).language])
        except Exception:  # an unknown token, a database down: the error itself is the answer
            return i18n.DEFAULT
    return i18n.DEFAULT


def localised_problem(problem: Problem, lang: str) -> dict[str, Any]:
    out = problem.as_dict()
    out["message"] = i18n.translate(problem.message, lang)
    return out


def _problems_response(status: int, problems: list[dict[str, Any]], lang: str = i18n.DEFAULT) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"status": status, "problems": problems},
        headers={"Content-Language": lang, "Vary": "Accept-Language"},
    )


def _loc_to_path(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    parts = [p for p in loc if p not in ("body",)]
    return tuple(p if isinstance(p, int) else str(p) for p in parts)


def domain_error_response(request: Request, exc: DomainError) -> JSONResponse:
    """A domain error as the API answers it: its status, every problem in the caller's language."""
    lang = request_language(request) if exc.status != 401 else _asked_language(request)
    response = _problems_response(exc.status, [localised_problem(p, lang) for p in exc.problems], lang)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        lang = request_language(request)
        problems = [
            Problem("malformed_json" if p.code == "json_invalid" else p.code, _loc_to_path(p.path), p.message).as_dict()
            for p in validation_problems(exc.errors(), lang)
        ]
        return _problems_response(422, problems, lang)


def _asked_language(request: Request) -> str:
    """The language the request names (no token look-up: for 401s, whose token is not to be trusted)."""
    return i18n.choose(
        [request.query_params.get("lang"), i18n.from_accept_language(request.headers.get("accept-language"))]
    )


UPLOAD_PATHS = (
    re.compile(r"^/xray/declarations/[^/]+/scans$"),
    re.compile(r"^/declarations/[^/]+/trade-documents/scan$"),
)
"""Routes that take scanned images or PDFs: they get the (larger) upload limit; everything else the body limit."""


class BodyLimit:
    """ASGI middleware refusing request bodies over the limit with 413, before they reach a handler.

    JSON bodies get `max_bytes`; the scan upload routes get `max_upload_bytes` (scanner images are large).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max(max_upload_bytes or max_bytes, max_bytes)

    def limit_for(self, path: str) -> int:
        return self.max_upload_bytes if any(p.match(path) for p in UPLOAD_PATHS) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(scope, send, limit)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        lang = _asked_language(Request(scope))
        problem = Problem("body_too_large", (), t("Request body over {limit} bytes", limit=limit))
        body = json.dumps({"status": 413, "problems": [localised_problem(problem, lang)]}, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-language", lang.encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def static_file(folder: Path, name: str, files: Mapping[str, str]) -> Response:
    """A page's script or style sheet from a fixed list (`name` → media type): nothing else on disk is reachable."""
    if name not in files:
        return Response(status_code=404)
    response = FileResponse(folder / name, media_type=files[name])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
