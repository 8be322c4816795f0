"""Storage, versions by date, the in-memory index and its invalidation, search, API and CLI (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.tariff import service
from smartcustoms.tariff.cli import app as tariff_cli
from smartcustoms.tariff.model import Schedule, TariffError, TariffLine, parse_rate
from smartcustoms.tariff.store import LineRow, ScheduleRow
from tests.conftest import shared_data


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    service.invalidate_cache()
    yield
    service.invalidate_cache()


def _schedule(version: str, start: date, end: date | None, rate: str, extra: bool = False) -> Schedule:
    lines = [
        TariffLine("01", 2, False, "Live animals", "活動物"),
        TariffLine("0101", 4, False, "Horses", "馬", parent="01"),
        TariffLine(
            "010121",
            6,
            True,
            "Pure-bred breeding horses",
            "純種繁殖用馬",
            parent="0101",
            general_rate=parse_rate(rate),
            preferential={"ECFA": parse_rate("Free")},
            unit="u",
            requirements=("CITES",),
        ),
    ]
    if extra:
        lines.append(
            TariffLine("010129", 6, True, "Other horses", "其他馬", parent="0101", general_rate=parse_rate(rate))
        )
    return Schedule(None, "demo", version, start, end, "TWD", tuple(lines), source="test")


def test_lookup_uses_the_version_valid_on_the_date(db_url: str) -> None:
    with unit_of_work() as s:
        service.save_schedule(s, _schedule("2024", date(2024, 1, 1), date(2024, 12, 31), "5%"))
        service.save_schedule(s, _schedule("2025", date(2025, 1, 1), None, "NT$3/kg + 2%", extra=True))
    with unit_of_work() as s:
        old = service.lookup(s, "0101.21", date(2024, 6, 1), "demo")
        new = service.lookup(s, "010121", date(2025, 2, 1), "demo")
        assert old is not None and old.general_rate == parse_rate("5%")
        assert new is not None and new.general_rate == parse_rate("NT$3/kg + 2%")
        assert new.preferential["ECFA"].free and new.requirements == ("CITES",) and new.unit == "u"
        assert new.description_zh == "純種繁殖用馬"
        assert service.lookup(s, "010129", date(2024, 12, 31), "demo") is None
        assert service.lookup(s, "010129", date(2025, 1, 1), "demo") is not None
        with pytest.raises(TariffError) as err:
            service.lookup(s, "010121", date(2023, 12, 31), "demo")
        assert err.value.problems[0].code == "no_schedule_version" and err.value.status == 404
        with pytest.raises(TariffError) as err:
            service.lookup(s, "010121", date(2025, 1, 1), "nope")
        assert err.value.problems[0].code == "unknown_schedule"
    assert service.get_index("demo", datetime(2024, 5, 1, 12, tzinfo=UTC)).schedule.version == "2024"
    index = service.get_index("demo", date(2025, 3, 1))
    assert index.schedule.version == "2025" and index.schedule.currency == "TWD" and index.schedule.id
    assert index.exists("0101") and not index.is_leaf("0101") and index.is_leaf("010121")
    assert not index.exists("999999") and index.get("999999") is None
    assert [line.code for line in index.path("010121")] == ["01", "0101", "010121"]
    assert [line.code for line in index.children("0101")] == ["010121", "010129"]


def test_reimport_of_a_version_replaces_it(db_url: str) -> None:
    with unit_of_work() as s:
        _, replaced = service.save_schedule(s, _schedule("1", date(2024, 1, 1), None, "5%"))
        assert not replaced
    with unit_of_work() as s:
        _, replaced = service.save_schedule(s, _schedule("1", date(2024, 1, 1), None, "5%"))
        assert replaced
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleRow)) == 1
        assert s.scalar(select(func.count()).select_from(LineRow)) == 3


def test_index_is_cached_and_invalidated_by_an_import(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_SCHEDULE", "demo")
    with unit_of_work() as s:
        service.save_schedule(s, _schedule("1", date(2024, 1, 1), None, "5%"))
    first = service.get_index(None, date(2025, 1, 1))
    assert first.schedule.name == "demo"  # the default schedule comes from the environment
    assert service.get_index("demo", date(2025, 1, 1)) is first  # in memory, no reload
    line = first.get("010121")
    assert line is not None and line.general_rate == parse_rate("5%")
    with unit_of_work() as s:
        service.save_schedule(s, _schedule("1", date(2024, 1, 1), None, "7.5%"))
    second = service.get_index("demo", date(2025, 1, 1))
    assert second is not first
    line = second.get("010121")
    assert line is not None and line.general_rate == parse_rate("7.5%")


def test_failed_import_writes_nothing(db_url: str) -> None:
    bad = _schedule("1", date(2024, 1, 1), None, "5%")
    bad = Schedule(None, "demo", "1", bad.valid_from, None, "TWD", bad.lines + bad.lines[:1])
    with pytest.raises(TariffError) as err, unit_of_work() as s:
        service.save_schedule(s, bad)
    assert err.value.problems[0].code == "duplicate_code"
    with pytest.raises(RuntimeError), unit_of_work() as s:
        service.save_schedule(s, _schedule("1", date(2024, 1, 1), None, "5%"))
        raise RuntimeError("crash after the insert")
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleRow)) == 0
        assert s.scalar(select(func.count()).select_from(LineRow)) == 0


def test_default_schedule_hs2022_and_search(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTCUSTOMS_TARIFF_SCHEDULE", raising=False)
    with unit_of_work() as s:
        report = service.ensure_default_schedule(s)
        assert report is not None and report.lines == 6960 and report.leaves == 5613 and not report.rates_failed
    with unit_of_work() as s:
        assert service.ensure_default_schedule(s) is None
        found = service.search(s, "bovine boneless", limit=5)
        assert [line.code for line in found][:2] == ["020130", "020230"]
        by_code = service.search(s, "02.01", limit=3)
        assert [line.code for line in by_code] == ["0201", "020110", "020120"]
        with pytest.raises(TariffError):
            service.search(s, "  ")
    index = service.get_index()
    assert index.schedule.name == "hs2022" and len(index) == 6960
    beef = index.get("020130")
    assert beef is not None and beef.general_rate is not None
    duty = beef.general_rate.assess(Decimal(5000), {"kg": Decimal(100)}, lambda a, c: a, "TWD")
    assert duty.amount == Decimal(2000)


def _tiny_taiwan(folder: Path) -> Path:
    """A few lines in the GC413 layout: header, CRLF, full-width punctuation, a wrapped English line."""
    files = {
        "note_8_C.txt": "HS_NO     NOTE\r\n01       第１章　活動物\r\n0101     馬、驢、騾及駃騠\r\n"
        "010121   純種繁殖用\r\n01012100 馬，純種繁殖用\r\n\r\nS01      第１類　活動物；動物產品\r\n",
        "note_8_E.txt": "HS_NO     NOTE\r\n01       Chapter 1 live animals\r\n0101     Live horses, asses,\r\n"
        "mules and hinnies\r\n010121   Pure-bred breeding animals\r\n01012100 Live horses, pure-bred breeding animals\r\n"
        "S01      SECTION I LIVE ANIMALS; ANIMAL PRODUCTS\r\n",
        "note_10_C.txt": "HS_NO       NOTE\r\n0101210000 馬，純種繁殖用\r\n",
        "note_10_E.txt": "HS_NO       NOTE\r\n0101210000 Live horses, pure-bred breeding animals\r\n",
    }
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def test_taiwan_layout_bilingual_search(db_url: str, tmp_path: Path) -> None:
    with unit_of_work() as s:
        report = service.import_schedule(s, "tw", _tiny_taiwan(tmp_path))
        assert (report.lines, report.leaves, report.rates_parsed) == (6, 1, 0)
    with unit_of_work() as s:
        zh = service.search(s, "馬,純種", "zh", "tw", 5)  # ASCII comma matches the full-width one
        assert [line.code for line in zh] == ["0101210000", "01012100"]
        assert next(line.code for line in service.search(s, "LIVE horses pure-bred", "en", "tw", 5)) == "0101210000"
        assert [line.code for line in service.search(s, "asses mules", None, "tw", 5)] == ["0101"]
        line = service.lookup(s, "0101.21.0000", date.today(), "tw")
        assert line is not None and line.description_zh == "馬，純種繁殖用" and line.general_rate is None
    index = service.get_index("tw")
    assert [line.code for line in index.path("0101210000")] == ["S01", "01", "0101", "010121", "01012100", "0101210000"]


def test_taiwan_real_files_import(sqlite_url: str) -> None:
    folder = shared_data("hs", "taiwan_gc413_mofgc413")
    with unit_of_work() as s:
        report = service.import_schedule(s, "tw", folder)
        assert report.lines > 29000 and report.leaves == 12228 and report.rates_parsed == 0
    with unit_of_work() as s:
        zh = service.search(s, "馬,純種", "zh", "tw", 5)
        assert "0101210000" in [line.code for line in zh]


def test_us_hts_rates_survive_storage(sqlite_url: str) -> None:
    path = shared_data("hs", "us_hts_2025_usitc", "htsdata.csv")
    with unit_of_work() as s:
        report = service.import_schedule(s, "us-hts", path, version="2025", valid_from=date(2025, 1, 1))
        assert report.parse_share > 0.99 and report.rates_failed
    index = service.get_index("us-hts", date(2025, 6, 1))
    assert index.schedule.currency == "USD"
    watch = index.get("9102.11.10")
    assert watch is not None and watch.general_rate is not None and len(watch.general_rate.parts) == 3
    assert watch.column2_rate is not None and watch.rate_for("KR") == parse_rate("Free")
    sugar = index.get("17011410")
    assert sugar is not None and sugar.general_rate is None and "less" in sugar.raw_rates["general"]
    stat = index.get("0101210010")
    assert stat is not None and stat.is_leaf and stat.general_rate == parse_rate("Free")


def test_api_lines_and_search(db_url: str) -> None:
    from smartcustoms.api import create_app

    with unit_of_work() as s:
        service.ensure_default_schedule(s)
        token = auth.issue_token(s, auth.create_user(s, "trader1", "trader", party_id="TW12345678"))
    client = TestClient(create_app())
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/tariff/lines/020130").status_code == 401
    got = client.get("/tariff/lines/0201.30", headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["code"] == "020130" and body["is_leaf"] and body["general_rate"]["text"] == "NT$20/kg"
    assert [p["code"] for p in body["path"]] == ["S01", "02", "0201"] and body["schedule"]["name"] == "hs2022"
    missing = client.get("/tariff/lines/123456", headers=headers)
    assert missing.status_code == 404 and missing.json()["problems"][0]["code"] == "unknown_code"
    old = client.get("/tariff/lines/020130", params={"date": "2019-01-01"}, headers=headers)
    assert old.status_code == 404
    found = client.get("/tariff/search", params={"q": "bovine boneless", "limit": 2}, headers=headers)
    assert found.status_code == 200 and [x["code"] for x in found.json()["lines"]] == ["020130", "020230"]
    refused = client.post("/tariff/schedules/import", json={"format": "hs2022"}, headers=headers)
    assert refused.status_code == 403


def test_cli_import_lookup_and_bad_path(sqlite_url: str) -> None:
    runner = CliRunner()
    bad = runner.invoke(tariff_cli, ["import", "--format", "us-hts", "/no/such/file.csv"])
    assert bad.exit_code == 2 and "bad_path" in bad.output
    wrong = runner.invoke(tariff_cli, ["import", "--format", "xml"])
    assert wrong.exit_code == 2 and "unknown_format" in wrong.output
    ok = runner.invoke(tariff_cli, ["import", "--format", "hs2022", "--version", "2022", "--valid-from", "2022-01-01"])
    assert ok.exit_code == 0, ok.output
    assert "5,613" in ok.output
    shown = runner.invoke(tariff_cli, ["lookup", "0406.10", "--date", "2024-05-01"])
    assert shown.exit_code == 0 and "NT$3/kg" in shown.output
    unknown = runner.invoke(tariff_cli, ["lookup", "123456"])
    assert unknown.exit_code == 1
    found = runner.invoke(tariff_cli, ["search", "cheese"])
    assert found.exit_code == 0 and "0406" in found.output


def test_cli_answers_in_the_readers_language(sqlite_url: str) -> None:
    """`smartcustoms --lang zh-Hant` (or SMARTCUSTOMS_LANG) turns the tariff commands' labels and problems into
    Traditional Chinese; codes, rates and numbers stay as they are."""
    runner = CliRunner()
    zh = {"SMARTCUSTOMS_LANG": "zh-Hant", "COLUMNS": "200"}
    bad = runner.invoke(tariff_cli, ["import", "--format", "us-hts", "/no/such/file.csv"], env=zh)
    assert bad.exit_code == 2 and "錯誤 [bad_path]" in bad.output and "error" not in bad.output
    args = ["import", "--format", "hs2022", "--version", "2022", "--valid-from", "2022-01-01"]
    ok = runner.invoke(tariff_cli, args, env=zh)
    assert ok.exit_code == 0, ok.output
    assert "稅則匯入:hs2022 2022" in ok.output and "無期限" in ok.output and "5,613" in ok.output
    assert "rates parsed" not in ok.output and "已解析的稅率" in ok.output
    shown = runner.invoke(tariff_cli, ["lookup", "0406.10", "--date", "2024-05-01"], env=zh)
    assert shown.exit_code == 0 and "一般稅率" in shown.output and "NT$3/kg" in shown.output
    unknown = runner.invoke(tariff_cli, ["lookup", "123456"], env=zh)
    assert unknown.exit_code == 1 and "查無稅號 123456" in unknown.output
    english = runner.invoke(tariff_cli, ["lookup", "123456"], env={"SMARTCUSTOMS_LANG": "en", "COLUMNS": "200"})
    assert "Unknown code 123456" in english.output
