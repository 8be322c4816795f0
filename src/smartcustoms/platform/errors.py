"""Problems with a code, a field path and a readable message; all of a request's problems travel together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: `path` is a JSON-path-like list of keys and indexes."""

    code: str
    path: tuple[str | int, ...]
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "path": list(self.path), "loc": _dotted(self.path), "message": self.message}


def _dotted(path: tuple[str | int, ...]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class DomainError(Exception):
    """Base error of every slice. `status` is the HTTP status the API maps it to."""

    status: int = 422

    def __init__(self, problems: list[Problem] | Problem | str, *, code: str = "invalid", status: int | None = None):
        if isinstance(problems, str):
            problems = [Problem(code, (), problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = problems
        if status is not None:
            self.status = status
        super().__init__("; ".join(f"{_dotted(p.path)}: {p.message}" for p in self.problems))


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class Unauthorized(DomainError):
    status = 401
