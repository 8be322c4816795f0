from __future__ import annotations

from smartcustoms.risk.audit import rank_companies
from smartcustoms.risk.kcs import from_kcs_frame
from smartcustoms.risk.selectivity import SelectivityModel


def test_audit_list_ranks_importers(fitted_model: SelectivityModel, kcs_later) -> None:  # type: ignore[no-untyped-def]
    frame = from_kcs_frame(kcs_later, require_labels=True)
    ranked = rank_companies(frame, fitted_model.assess(frame, explain="none"), top=10)
    assert len(ranked) == 10 and list(ranked["rank"]) == list(range(1, 11))
    assert ranked["expected_unpaid"].is_monotonic_decreasing
    assert ranked["reason"].str.contains("expected unpaid revenue").all()
    # The planted bad importers (IMP000..IMP014) dominate the top of the list.
    assert ranked["importer_id"].head(5).str.slice(3).astype(int).lt(15).sum() >= 2


def test_items_of_one_declaration_count_once(fitted_model: SelectivityModel, kcs_later) -> None:  # type: ignore[no-untyped-def]
    frame = from_kcs_frame(kcs_later.head(40), require_labels=True)
    frame["declaration_id"] = [f"D{i // 2}" for i in range(len(frame))]  # two lines per declaration
    frame["importer_id"] = "IMP1"
    frame["fraud"] = [1.0, 0.0] * 20
    ranked = rank_companies(frame, fitted_model.assess(frame, explain="none"))
    assert int(ranked["declarations"].iloc[0]) == 20 and int(ranked["past_findings"].iloc[0]) == 20
    assert ranked["reason"].iloc[0].startswith("20 declarations,")
