"""Movement reference numbers: format, uniqueness within a group, and order by filing time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from smartcustoms.clearance.service import new_references

MRN = re.compile(r"^\d{2}TW[2-7A-Z]{14}$")

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59, 999999)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def test_a_group_gets_distinct_references_of_the_mrn_format() -> None:
    at = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    refs = new_references(at, 5000)
    assert len(refs) == len(set(refs)) == 5000
    assert all(MRN.match(r) for r in refs)
    assert all(r.startswith("26TW") for r in refs)
    assert len({r[:11] for r in refs}) == 1  # one time stamp for the group


def test_the_country_is_part_of_the_reference() -> None:
    (ref,) = new_references(datetime(2026, 1, 1, tzinfo=UTC), 1, country="NL")
    assert ref.startswith("26NL") and len(ref) == 18


@given(moments, st.integers(min_value=1, max_value=10**9))
def test_a_later_filing_sorts_after_an_earlier_one_in_the_same_year(at: datetime, later_ms: int) -> None:
    after = at + timedelta(milliseconds=later_ms)
    (first,) = new_references(at, 1)
    (second,) = new_references(after, 1)
    if after.year == at.year:
        assert first < second
    assert MRN.match(first) and MRN.match(second)


def test_the_last_millisecond_of_a_leap_year_still_fits() -> None:
    (ref,) = new_references(datetime(2028, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 1)
    assert MRN.match(ref)
    (first,) = new_references(datetime(2028, 1, 1, tzinfo=UTC), 1)
    assert first < ref
