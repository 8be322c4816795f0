"""The pure domain: requirements index, CSV parser, permit validation, line check and allowance arithmetic."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcustoms.singlewindow.permits import model
from smartcustoms.singlewindow.permits.model import Line, Permit, PermitInput, Requirement, RequirementIndex

D0 = date(2026, 6, 1)
QC = Requirement("02", "import", "BAPHIQ", "quarantine_certificate", "Quarantine", date(2020, 1, 1))
QC_BEEF = Requirement("0201", "import", "BAPHIQ", "quarantine_certificate", "Beef quarantine", date(2020, 1, 1))
FI = Requirement("02", "import", "TFDA", "food_import_permit", "Food permit", date(2020, 1, 1), date(2026, 12, 31))
EXP = Requirement("8486", "export", "BOFT", "strategic_export_licence", "SHTC", date(2020, 1, 1))
INDEX = RequirementIndex([QC, QC_BEEF, FI, EXP])


def permit(number: str = "QC-1", **over: object) -> Permit:
    base: dict[str, object] = {
        "id": 1,
        "number": number,
        "agency": "BAPHIQ",
        "permit_type": "quarantine_certificate",
        "direction": "import",
        "holder": "TW1",
        "codes": ("0201",),
        "valid_from": D0 - timedelta(days=10),
        "valid_to": D0 + timedelta(days=10),
        "quantity_allowance": Decimal(100),
        "quantity_unit": "kg",
    }
    base.update(over)
    return Permit(**base)  # type: ignore[arg-type]


def line(kg: str = "40", permits: tuple[str, ...] = ("QC-1", "FI-1"), code: str = "020130", i: int = 0) -> Line:
    return Line(i, i + 1, code, Decimal(kg), "kg", Decimal(kg), Decimal("1000"), "USD", permits)


FI_PERMIT = permit(
    "FI-1", id=2, agency="TFDA", permit_type="food_import_permit", codes=("02",), quantity_allowance=None
)


def codes(lines: list[Line], permits: list[Permit], holder: str = "TW1", on: date = D0) -> list[str]:
    ev = model.evaluate(lines, "import", holder, on, INDEX, {p.number: p for p in permits})
    return [p.code for p in ev.problems]


def test_index_finds_by_prefix_direction_and_date() -> None:
    found = INDEX.find("0201.30", "import", D0)
    assert {(r.agency, r.code_prefix) for r in found} == {("BAPHIQ", "0201"), ("TFDA", "02")}, "longest prefix wins"
    assert INDEX.find("020130", "export", D0) == []
    assert {r.agency for r in INDEX.find("020130", "import", date(2027, 1, 1))} == {"BAPHIQ"}, "FI expired"
    assert INDEX.find("848620", "export", D0)[0].agency == "BOFT"
    assert INDEX.find("0", "import", D0) == []


def test_every_problem_kind() -> None:
    ok = [permit(), FI_PERMIT]
    assert codes([line()], ok) == []
    assert codes([line(permits=("FI-1",))], ok) == ["permit_missing"]
    assert codes([line(permits=("QC-1", "FI-1", "ZZ"))], ok) == ["permit_unknown"]
    assert codes([line()], [permit(status=model.REVOKED), FI_PERMIT]) == ["permit_revoked"]
    assert codes([line()], ok, on=D0 + timedelta(days=11)) == ["permit_expired", "permit_expired"]
    assert codes([line()], [permit(valid_from=D0 + timedelta(days=1)), FI_PERMIT]) == ["permit_not_yet_valid"]
    assert codes([line()], ok, holder="TW2") == ["permit_other_holder", "permit_other_holder"]
    assert codes([line(code="020230")], [permit(), FI_PERMIT]) == ["permit_code_not_covered"]
    assert codes([line(kg="101")], ok) == ["permit_allowance_exceeded"]
    assert codes([line(kg="60"), line(kg="50", i=1)], ok) == ["permit_allowance_exceeded"], "lines add up"
    assert codes([line()], [permit(direction="export"), FI_PERMIT]) == ["permit_wrong_type"]
    wrong = permit("X-1", id=3, agency="MOENV", permit_type="waste_import_permit")
    assert codes([line(permits=("X-1", "FI-1"))], [wrong, FI_PERMIT]) == ["permit_wrong_type"]
    boxes = Line(0, 1, "020130", Decimal(5), "u", Decimal(40), Decimal(1000), "USD", ("QC-1", "FI-1"))
    ev = model.evaluate([boxes], "import", "TW1", D0, INDEX, {p.number: p for p in ok})
    assert ev.problems == [] and ev.draws[0].quantity == Decimal(40), "a kg allowance counts the net mass"
    assert codes([line()], [permit(quantity_unit="l"), FI_PERMIT]) == ["permit_unit_mismatch"]
    assert codes([line(code="610910", permits=())], []) == [], "no requirement, nothing to check"


def test_value_allowance_converts_currency() -> None:
    p = permit(quantity_allowance=None, value_allowance=Decimal(33000), value_currency="TWD")
    rates = {"USD": Decimal("32"), "TWD": Decimal(1)}

    def convert(amount: Decimal, frm: str, to: str) -> Decimal | None:
        return amount * rates[frm] / rates[to] if frm in rates and to in rates else None

    ev = model.evaluate([line()], "import", "TW1", D0, INDEX, {"QC-1": p, "FI-1": FI_PERMIT}, convert=convert)
    assert ev.problems == [] and ev.draws[0].value == Decimal(32000)
    ev = model.evaluate(
        [line(), line(i=1)], "import", "TW1", D0, INDEX, {"QC-1": p, "FI-1": FI_PERMIT}, convert=convert
    )
    assert [x.code for x in ev.problems] == ["permit_allowance_exceeded"]
    ev = model.evaluate([line()], "import", "TW1", D0, INDEX, {"QC-1": p, "FI-1": FI_PERMIT})
    assert [x.code for x in ev.problems] == ["permit_currency_mismatch"]


@settings(max_examples=150, deadline=None)
@given(
    allowance=st.decimals(min_value=0, max_value=10_000, places=3),
    draws=st.lists(st.decimals(min_value=0, max_value=2_000, places=3), max_size=30),
)
def test_allowance_is_never_exceeded(allowance: Decimal, draws: list[Decimal]) -> None:
    """Drawing greedily with can_draw: the total stays within the allowance and every refusal was needed."""
    used = Decimal(0)
    for amount in draws:
        if model.can_draw(allowance, used, amount):
            used += amount
        else:
            assert used + amount > allowance
        assert used <= allowance
        assert model.remaining(allowance, used) == allowance - used >= 0
    assert model.can_draw(None, used, Decimal(10**9))
    assert not model.can_draw(allowance, Decimal(0), Decimal(-1))


@settings(max_examples=60, deadline=None)
@given(kgs=st.lists(st.integers(min_value=0, max_value=80), min_size=1, max_size=6))
def test_evaluate_draws_sum_within_allowance(kgs: list[int]) -> None:
    lines = [line(kg=str(k), i=i) for i, k in enumerate(kgs)]
    ev = model.evaluate(lines, "import", "TW1", D0, INDEX, {"QC-1": permit(), "FI-1": FI_PERMIT})
    qc = sum((d.quantity for d in ev.draws if d.number == "QC-1"), Decimal(0))
    assert qc <= 100
    refused = {p.index for p in ev.problems}
    assert all(d.index not in refused for d in ev.draws if d.number == "QC-1")


def test_csv_parser_reports_line_numbers_and_fields() -> None:
    text = (
        "# comment\n"
        "code_prefix,direction,agency,permit_type,title,valid_from,valid_to,legal_basis\n"
        "0201,import,BAPHIQ,quarantine_certificate,Beef,2024-01-01,,Act\n"
        "02x,both,b,Bad Type,,2024-02-30,2023-01-01,\n"
        "0201,import,BAPHIQ,quarantine_certificate,Beef again,2024-01-01,,\n"
        "03,import\n"
        "0303,export,TFDA,food_import_permit,Fish,2024-05-01,2024-01-01,\n"
    )
    reqs, problems = model.parse_requirements_csv(text)
    assert [r.code_prefix for r in reqs] == ["0201"]
    got = {(p.code, p.path) for p in problems}
    assert {
        ("invalid_code", ("line", 4, "code_prefix")),
        ("unknown_direction", ("line", 4, "direction")),
        ("invalid_agency", ("line", 4, "agency")),
        ("invalid_permit_type", ("line", 4, "permit_type")),
        ("required", ("line", 4, "title")),
        ("invalid_date", ("line", 4, "valid_from")),
        ("duplicate_row", ("line", 5)),
        ("wrong_cell_count", ("line", 6)),
        ("ends_before_start", ("line", 7, "valid_to")),
    } == got
    assert model.parse_requirements_csv("")[1][0].code == "empty_file"
    assert model.parse_requirements_csv("code_prefix,direction\n")[1][0].code == "missing_column"


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('0123456789,abcXYZ-\n"# ')), max_size=300))
def test_csv_parser_never_crashes(text: str) -> None:
    header = "code_prefix,direction,agency,permit_type,title,valid_from,valid_to\n"
    _reqs, problems = model.parse_requirements_csv(header + text)
    for p in problems:
        assert p.path[0] == "line" and isinstance(p.path[1], int) and p.message


def test_permit_validation_lists_each_field() -> None:
    bad = PermitInput("", "Bad", "both", "", [], None, None, Decimal(-1), None, Decimal("1e20"), "usd")
    got = {(p.code, p.path) for p in model.check_permit(bad)}
    assert {
        ("invalid_number", ("number",)),
        ("invalid_permit_type", ("permit_type",)),
        ("unknown_direction", ("direction",)),
        ("invalid_holder", ("holder",)),
        ("required", ("codes",)),
        ("required", ("valid_from",)),
        ("required", ("valid_to",)),
        ("negative_allowance", ("quantity_allowance",)),
        ("required", ("quantity_unit",)),
        ("out_of_range", ("value_allowance",)),
        ("invalid_unit", ("value_currency",)),
    } == got
    good = PermitInput("P-1", "cites_permit", "import", "TW1", ["4403"], D0, D0, None, None, Decimal(5), "USD")
    assert model.check_permit(good, known_code=lambda c: c == "4403") == []
