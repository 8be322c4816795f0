"""A filing's stored payload and fingerprint: the JSON text pydantic writes once, hashed as it is, and the
fingerprints stored before that change still recognised on resubmission."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from smartcustoms.clearance import ingest, service
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform.db import unit_of_work
from tests.clearance.conftest import Env, declaration

amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999"), places=2, allow_nan=False)


def _shuffled(value: Any, rnd: random.Random) -> Any:
    """The same JSON content with every object's keys in another order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: _shuffled(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(str.strip), amounts, amounts, st.integers(0, 2**32))
def test_payload_is_the_json_of_the_model_and_its_fingerprint_ignores_key_order(
    description: str, freight: Decimal, insurance: Decimal, seed: int
) -> None:
    raw = declaration(freight=str(freight), insurance=str(insurance))
    raw["items"][0]["description"] = description
    decl = DeclarationIn.model_validate(raw)
    body = service.payload_json(decl)
    assert orjson.loads(body) == decl.model_dump(mode="json")
    again = DeclarationIn.model_validate_json(orjson.dumps(_shuffled(raw, random.Random(seed))))
    assert service.payload_hash(again) == service.payload_hash(decl) == service.payload_hash(body)
    changed = DeclarationIn.model_validate({**raw, "freight": str(freight + 1)})
    assert service.payload_hash(changed) != service.payload_hash(decl)


def _store_legacy_fingerprint(reference: str, decl: DeclarationIn) -> None:
    with unit_of_work() as s:
        s.execute(
            update(DeclarationRow)
            .where(DeclarationRow.reference == reference)
            .values(payload_hash=service.legacy_payload_hash(decl))
        )


def test_a_filing_fingerprinted_the_old_way_is_still_the_same_filing(env: Env) -> None:
    first = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    ref = first.json()["reference"]
    assert first.json()["declaration"] == DeclarationIn.model_validate(declaration()).model_dump(mode="json")
    _store_legacy_fingerprint(ref, DeclarationIn.model_validate(declaration()))
    again = env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    assert again.status_code == 200 and again.json()["reference"] == ref
    # the stored JSON text reads back as the filing (this answer is the row read from the database)
    assert again.json()["declaration"] == first.json()["declaration"]
    changed = env.client.post("/declarations", json=declaration(freight="401.00"), headers=env.h("trader"))
    assert changed.status_code == 409 and changed.json()["problems"][0]["code"] == "duplicate_lrn"
    # batch ingest compares the same way
    report = ingest.ingest([orjson.dumps(declaration()), orjson.dumps(declaration(freight="402.00"))], "trader")
    assert report.duplicates == [ref] and not report.accepted
    assert [(i, [p.code for p in problems]) for i, problems in report.rejected] == [(1, ["duplicate_lrn"])]
