from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from smartcustoms.risk.kcs import RiskInputError, from_declaration, from_kcs_frame, read_kcs
from tests.risk.conftest import make_kcs, write_csv


def _codes(exc: pytest.ExceptionInfo[RiskInputError]) -> list[tuple[str, tuple[str | int, ...]]]:
    return [(p.code, p.path) for p in exc.value.problems]


def test_reads_kcs_into_canonical_frame(tmp_path: Path) -> None:
    df = make_kcs(50)
    df.loc[0, "HS6 Code"] = "30487"  # a tool dropped the leading zero of chapter 03
    frame = read_kcs([write_csv(df, tmp_path / "a.csv")], require_labels=True)
    assert len(frame) == 50
    assert frame.loc[0, "hs_code"] == "030487"
    assert frame["date"].dtype.kind == "M"
    assert set(frame["fraud"].unique()) <= {0.0, 1.0}


def test_scoring_input_needs_no_labels() -> None:
    df = make_kcs(20).drop(columns=["Fraud", "Critical Fraud"])
    frame = from_kcs_frame(df, require_labels=False)
    assert "fraud" not in frame.columns


def test_missing_column_is_named() -> None:
    df = make_kcs(20).drop(columns=["Importer ID", "Net Mass"])
    with pytest.raises(RiskInputError) as exc:
        from_kcs_frame(df, require_labels=False)
    assert ("missing_column", ("Importer ID",)) in _codes(exc)
    assert ("missing_column", ("Net Mass",)) in _codes(exc)
    assert "Importer ID" in str(exc.value)


def test_wrong_type_names_column_and_row() -> None:
    df = make_kcs(20).astype({"Item Price": object})
    df.loc[3, "Item Price"] = "twelve"
    with pytest.raises(RiskInputError) as exc:
        from_kcs_frame(df, require_labels=False)
    assert exc.value.problems[0].path == ("Item Price",)
    assert "row 4" in exc.value.problems[0].message and "twelve" in exc.value.problems[0].message


def test_bad_date_and_label() -> None:
    df = make_kcs(20).astype({"Date": object, "Fraud": object})
    df.loc[0, "Date"] = "01/02/2020"
    df.loc[1, "Fraud"] = "yes"
    with pytest.raises(RiskInputError) as exc:
        from_kcs_frame(df, require_labels=True)
    paths = [p.path for p in exc.value.problems]
    assert ("Date",) in paths and ("Fraud",) in paths


def test_training_needs_positive_labels(tmp_path: Path) -> None:
    df = make_kcs(30)
    df["Fraud"] = 0
    with pytest.raises(RiskInputError) as exc:
        read_kcs([write_csv(df, tmp_path / "a.csv")], require_labels=True)
    assert _codes(exc) == [("no_positive_labels", ("Fraud",))]


def test_training_needs_label_column(tmp_path: Path) -> None:
    df = make_kcs(30).drop(columns=["Fraud"])
    with pytest.raises(RiskInputError) as exc:
        read_kcs([write_csv(df, tmp_path / "a.csv")], require_labels=True)
    assert ("missing_column", ("Fraud",)) in _codes(exc)


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(RiskInputError):
        read_kcs([tmp_path / "nope.csv"], require_labels=False)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RiskInputError):
        read_kcs([tmp_path / "empty.csv"], require_labels=False)


def test_platform_declaration_to_rows() -> None:
    rows = from_declaration(
        {
            "importer_id": "IMP001",
            "declarant_id": "DEC1",
            "seller_id": None,
            "office": "30",
            "transport_mode": "40",
            "aeo": True,
            "items": [
                {"hs_code": "8517.62", "origin": "CN", "net_mass_kg": 10, "value": 1000},
                {"hs_code": "610910", "origin": "VN", "net_mass_kg": 5, "value": 100, "tax_rate": 13},
            ],
        }
    )
    assert [r["hs_code"] for r in rows] == ["851762", "610910"]
    assert rows[0]["aeo"] is True and rows[1]["tax_rate"] == 13.0
    with pytest.raises(RiskInputError):
        from_declaration({"items": [{"hs_code": "851762"}]})


def test_shared_kcs_header_is_accepted() -> None:
    from tests.conftest import shared_data

    path = shared_data("risk", "kcs", "hs10", "df_syn_valid_eng.csv")
    frame = from_kcs_frame(pd.read_csv(path, dtype=str, nrows=200), require_labels=True)
    assert frame["hs_code"].str.len().eq(10).all()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_COLS = ["Date", "Net Mass", "Item Price", "Tax Rate", "HS6 Code", "Importer ID", "Fraud"]


@settings(max_examples=80, deadline=None)
@given(col=st.sampled_from(_COLS), cell=st.one_of(st.text(max_size=12), st.none()), row=st.integers(0, 9))
def test_any_bad_cell_is_a_named_problem_or_accepted(col: str, cell: str | None, row: int) -> None:
    df = make_kcs(10).astype(object)
    df.loc[row, col] = cell
    try:
        frame = from_kcs_frame(df, require_labels=True)
    except RiskInputError as exc:
        assert all(p.path == (col,) for p in exc.problems), exc.problems
        assert col in str(exc)
    else:
        assert len(frame) == 10
