from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from smartcustoms.platform import audit, auth
from smartcustoms.platform.db import get_engine, unit_of_work
from smartcustoms.platform.errors import Conflict, DomainError, Unauthorized
from smartcustoms.platform.store import TokenRow


def test_token_is_stored_only_as_hash(db_url: str) -> None:
    with unit_of_work() as s:
        user = auth.create_user(s, "ofc1", "officer")
        token = auth.issue_token(s, user)
    with unit_of_work() as s:
        hashes = list(s.scalars(select(TokenRow.token_hash)))
        assert token not in hashes and auth.hash_token(token) in hashes
        who = auth.authenticate(s, token)
    assert who.username == "ofc1" and who.role is auth.Role.OFFICER


def test_revoked_and_unknown_tokens_refused(db_url: str) -> None:
    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "tr1", "trader", party_id="TW12345678"))
    with unit_of_work() as s:
        assert auth.revoke_tokens(s, "tr1") == 1
    with unit_of_work() as s, pytest.raises(Unauthorized):
        auth.authenticate(s, token)
    with unit_of_work() as s, pytest.raises(Unauthorized):
        auth.authenticate(s, "sc_nonsense")


def test_user_validation_lists_every_problem(db_url: str) -> None:
    with unit_of_work() as s, pytest.raises(DomainError) as err:
        auth.create_user(s, "bad name!", "king")
    assert {p.code for p in err.value.problems} == {"invalid_username", "invalid_role"}
    with unit_of_work() as s, pytest.raises(DomainError) as err:
        auth.create_user(s, "t", "trader")
    assert err.value.problems[0].code == "party_required"


def test_duplicate_user_conflicts(db_url: str) -> None:
    with unit_of_work() as s:
        auth.create_user(s, "dup", "admin")
    with unit_of_work() as s, pytest.raises(Conflict):
        auth.create_user(s, "dup", "admin")


def test_password_sign_in(db_url: str) -> None:
    with unit_of_work() as s:
        auth.create_user(s, "o2", "officer", password="s3cret-pass")
    with unit_of_work() as s:
        who, token = auth.sign_in(s, "o2", "s3cret-pass")
        assert who.username == "o2" and auth.authenticate(s, token).username == "o2"
    with unit_of_work() as s, pytest.raises(Unauthorized):
        auth.sign_in(s, "o2", "wrong")


def test_audit_log_is_append_only(db_url: str) -> None:
    with unit_of_work() as s:
        audit.record(s, auth.SYSTEM, "test", "thing", 1, detail={"k": "v"})
    for stmt in ("UPDATE platform_audit SET actor = 'mallory'", "DELETE FROM platform_audit"):
        with pytest.raises(DatabaseError), get_engine().begin() as conn:
            conn.execute(text(stmt))
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT actor FROM platform_audit")).scalar_one() == "system"
