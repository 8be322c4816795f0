"""Users, roles and API tokens. Tokens are random, shown once, and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import Conflict, DomainError, Forbidden, NotFound, Problem, Unauthorized
from smartcustoms.platform.i18n import t
from smartcustoms.platform.store import TokenRow, UserRow


class Role(StrEnum):
    TRADER = "trader"
    BROKER = "broker"
    CARRIER = "carrier"
    OFFICER = "officer"
    ANALYST = "analyst"
    AGENCY = "agency"
    PARTNER = "partner"
    ADMIN = "admin"


CUSTOMS_ROLES = frozenset({Role.OFFICER, Role.ANALYST, Role.ADMIN})
"""Roles that see every declaration; the others see only what they filed or are party to."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a use case."""

    user_id: int
    username: str
    role: Role
    party_id: str | None
    language: str = "en"

    @property
    def is_customs(self) -> bool:
        return self.role in CUSTOMS_ROLES


SYSTEM = Principal(0, "system", Role.ADMIN, None)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)


def _now() -> datetime:
    return datetime.now(UTC)


def create_user(
    session: Session,
    username: str,
    role: str,
    *,
    display_name: str | None = None,
    party_id: str | None = None,
    password: str | None = None,
    language: str = "en",
) -> UserRow:
    problems: list[Problem] = []
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        problems.append(
            Problem("invalid_username", ("username",), t("Username must be 1-64 letters, digits, '-', '_' or '.'"))
        )
    if role not in {r.value for r in Role}:
        problems.append(
            Problem(
                "invalid_role",
                ("role",),
                t("Unknown role '{role}'; one of {allowed}", role=role, allowed=", ".join(r.value for r in Role)),
            )
        )
    if role in (Role.TRADER, Role.BROKER, Role.CARRIER, Role.AGENCY, Role.PARTNER) and not party_id:
        problems.append(
            Problem(
                "party_required",
                ("party_id",),
                t("A {role} user needs the party ID (e.g. trader's TIN) it acts for", role=role),
            )
        )
    if problems:
        raise DomainError(problems)
    if session.scalar(select(UserRow).where(UserRow.username == username)) is not None:
        raise Conflict(
            Problem("duplicate_username", ("username",), t("User '{username}' already exists", username=username))
        )
    row = UserRow(
        username=username,
        display_name=display_name or username,
        role=role,
        party_id=party_id,
        language=language,
        password_hash=hash_password(password) if password else None,
        active=True,
        created_at=_now(),
    )
    session.add(row)
    session.flush()
    return row


def issue_token(session: Session, user: UserRow, label: str = "api", ttl: timedelta | None = None) -> str:
    """Create a token for `user`; the clear text is returned once and never stored."""
    token = "sc_" + secrets.token_urlsafe(32)
    session.add(
        TokenRow(
            user_id=user.id,
            token_hash=hash_token(token),
            label=label,
            created_at=_now(),
            expires_at=_now() + ttl if ttl else None,
        )
    )
    session.flush()
    return token


def revoke_tokens(session: Session, username: str) -> int:
    user = find_user(session, username)
    count = 0
    for tok in session.scalars(select(TokenRow).where(TokenRow.user_id == user.id, TokenRow.revoked_at.is_(None))):
        tok.revoked_at = _now()
        count += 1
    return count


def find_user(session: Session, username: str) -> UserRow:
    user = session.scalar(select(UserRow).where(UserRow.username == username))
    if user is None:
        raise NotFound(Problem("unknown_user", ("username",), t("No user '{username}'", username=username)))
    return user


def principal_of(user: UserRow) -> Principal:
    return Principal(user.id, user.username, Role(user.role), user.party_id, user.language)


def acting_principal(session: Session, username: str) -> Principal:
    """The user a command-line action is taken as (`--user`): refused when unknown or deactivated, as the API
    refuses a deactivated user's tokens; otherwise a deactivated broker could still file from the CLI."""
    user = find_user(session, username)
    if not user.active:
        raise Forbidden(
            Problem("inactive_user", ("username",), t("User '{username}' is deactivated", username=username))
        )
    return principal_of(user)


def acting_user(username: str) -> Principal:
    """`acting_principal` read in a unit of its own: what a command given `--user` acts as."""
    with unit_of_work(read_only=True) as session:
        return acting_principal(session, username)


def authenticate(session: Session, token: str) -> Principal:
    """Resolve a bearer token to its user, refusing unknown, revoked, expired tokens and inactive users."""
    row = session.scalar(select(TokenRow).where(TokenRow.token_hash == hash_token(token)))
    bad = Unauthorized(Problem("invalid_token", ("headers", "authorization"), t("Unknown, expired or revoked token")))
    if row is None or row.revoked_at is not None:
        raise bad
    if row.expires_at is not None and _aware(row.expires_at) < _now():
        raise bad
    user = session.get(UserRow, row.user_id)
    if user is None or not user.active:
        raise bad
    return principal_of(user)


def sign_in(session: Session, username: str, password: str) -> tuple[Principal, str]:
    """Check a console password and return a 12-hour session token."""
    user = session.scalar(select(UserRow).where(UserRow.username == username))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        raise Unauthorized(Problem("bad_credentials", ("username",), t("Wrong username or password")))
    return principal_of(user), issue_token(session, user, label="console", ttl=timedelta(hours=12))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.username)))


def user_view(user: UserRow) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "party_id": user.party_id,
        "language": user.language,
        "active": user.active,
    }


def update_user(
    session: Session,
    username: str,
    *,
    role: str | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    language: str | None = None,
) -> UserRow:
    """Change a user's role, status or profile; a deactivated user's tokens are refused from then on."""
    user = find_user(session, username)
    if role is not None:
        if role not in {r.value for r in Role}:
            raise DomainError(
                Problem(
                    "invalid_role",
                    ("role",),
                    t("Unknown role '{role}'; one of {allowed}", role=role, allowed=", ".join(r.value for r in Role)),
                )
            )
        user.role = role
    if active is not None:
        user.active = active
    if display_name is not None:
        user.display_name = display_name
    if language is not None:
        user.language = language
    return user
