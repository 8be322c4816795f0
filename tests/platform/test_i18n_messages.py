"""Translatable messages: English now, any language on display, and every template in both catalogues."""

from __future__ import annotations

import pickle

import pytest
from babel.messages.pofile import read_po
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from smartcustoms.platform import i18n
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import Msg, t, translate
from smartcustoms.platform.i18n.extract import messages
from smartcustoms.platform.i18n.messages import COUNTRY, PLACEHOLDER, template_problems
from smartcustoms.platform.i18n.validation import PYDANTIC, validation_message

ZH = "zh-Hant"


def _catalogue(lang: str) -> dict[str, str]:
    with i18n.catalogue_path(lang).open("rb") as fh:
        return {m.id: str(m.string or "") for m in read_po(fh) if m.id and isinstance(m.id, str)}


def _brace_templates() -> list[str]:
    return sorted(m for m in messages() if PLACEHOLDER.search(m) and "%(" not in m)


def test_a_message_is_its_english_text_and_keeps_its_template() -> None:
    m = t("Importer {importer} is on the watchlist", importer="TW1")
    assert m == "Importer TW1 is on the watchlist" and isinstance(m, str)
    assert m.template == "Importer {importer} is on the watchlist" and m.params == {"importer": "TW1"}
    assert pickle.loads(pickle.dumps(m)).template == m.template
    assert Msg.from_json(m.as_json()) == m
    assert translate(m, "en") == m
    assert translate(m, ZH) == "進口人 TW1 列於注檢名單"


def test_stored_english_text_translates_back_through_the_catalogue() -> None:
    assert translate("Importer TW1 is on the watchlist", ZH) == "進口人 TW1 列於注檢名單"
    assert translate("Must not be negative", ZH) == "不得為負數"
    assert translate("Free text an officer typed", ZH) == "Free text an officer typed"
    assert translate("", ZH) == ""


def test_nested_messages_translate_both_as_objects_and_as_stored_text() -> None:
    inner = t("No user '{username}'", username="bob")
    outer = t("{message} [{source}: {code}]", message=inner, source="permits", code="missing_permit")
    assert translate(outer, ZH) == "查無使用者「bob」 [permits: missing_permit]"
    assert translate(str(outer), ZH) == "查無使用者「bob」 [permits: missing_permit]"
    step = "Preference ECFA not granted: no proof-of-origin reference given; general rate applies"
    assert translate(step, ZH) == "不予適用 ECFA 優惠稅率:未提供原產地證明文件號碼;改按一般稅率課徵"


def test_problems_keep_their_code_and_path() -> None:
    exc = DomainError(
        Problem("unknown_currency", ("currency",), t("'{currency}' is not an ISO 4217 code", currency="X"))
    )
    p = exc.problems[0]
    assert p.as_dict()["message"] == "'X' is not an ISO 4217 code"
    assert translate(p.message, ZH) == "「X」不是 ISO 4217 幣別代碼"


class _Form(BaseModel):
    name: str = Field(max_length=3)
    count: int


def test_pydantic_messages_translate_by_type_with_their_values() -> None:
    with pytest.raises(ValidationError) as caught:
        _Form.model_validate({"name": "abcdef"})
    errors = {e["type"]: e for e in caught.value.errors()}
    assert validation_message(errors["missing"], ZH) == "必填欄位"
    assert validation_message(errors["string_too_long"], ZH) == "字串最多 3 個字元"
    assert validation_message(errors["string_too_long"], "en") == errors["string_too_long"]["msg"]
    unknown = {"type": "no_such_type", "msg": "Something odd"}
    assert validation_message(unknown, ZH) == "Something odd"


def catalogue_gaps(used: list[str]) -> list[str]:
    """What is wrong with the catalogues for these code templates: missing, untranslated, placeholders differ."""
    en, zh = _catalogue("en"), _catalogue(ZH)
    gaps = [f"not in en.po: {m}" for m in used if m not in en]
    gaps += [f"no Traditional Chinese: {m}" for m in used if not zh.get(m)]
    for msgid in used:
        gaps += template_problems(msgid)
        names = sorted(n for n, _ in PLACEHOLDER.findall(msgid))
        if zh.get(msgid) and sorted(n for n, _ in PLACEHOLDER.findall(zh[msgid])) != names:
            gaps.append(f"placeholders differ: {msgid}")
    return gaps


def test_every_code_template_is_in_both_catalogues_translated_with_the_same_placeholders() -> None:
    used = _brace_templates()
    assert len(used) > 100
    assert catalogue_gaps(used) == [], "run python -m smartcustoms.platform.i18n.extract, then translate"


def test_every_pydantic_template_is_extracted() -> None:
    assert set(PYDANTIC.values()) <= set(messages())


def test_the_completeness_check_catches_a_missing_or_broken_message() -> None:
    assert catalogue_gaps(["A message nobody translated {x}"]) == [
        "not in en.po: A message nobody translated {x}",
        "no Traditional Chinese: A message nobody translated {x}",
    ]
    assert catalogue_gaps(["Amount {amount:,.2f}"])


@pytest.mark.parametrize("template", _brace_templates())
def test_each_template_round_trips_from_its_english_text(template: str) -> None:
    names = {n for n, _ in PLACEHOLDER.findall(template)}
    params = {n: "CN" if n in COUNTRY else f"V{i}x" for i, n in enumerate(sorted(names))}  # a country is a code
    english = t(template, **params)
    assert translate(str(english), ZH) == translate(english, ZH), template


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_parameter_value_survives_translation(value: str) -> None:
    m = t("Importer {importer} is on the watchlist", importer=value)
    assert translate(m, ZH) == f"進口人 {value} 列於注檢名單"
    assert value in translate(str(m), ZH)


def test_command_line_language_comes_from_option_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTCUSTOMS_LANG", raising=False)
    monkeypatch.setenv("LANG", "zh_TW.UTF-8")
    assert i18n.environment_language() == ZH
    assert i18n.environment_language("en") == "en"
    monkeypatch.setenv("SMARTCUSTOMS_LANG", "en")
    assert i18n.environment_language() == "en"
    monkeypatch.delenv("SMARTCUSTOMS_LANG")
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert i18n.environment_language() == "en"


def test_no_template_uses_format_specs() -> None:
    assert len(template_problems("{amount:,.2f} and {0}")) == 2


def test_every_t_call_has_a_literal_template_so_extraction_sees_it() -> None:
    """A `t(variable)` would escape the catalogue check: templates must be written where they are used."""
    import ast

    from smartcustoms.platform.i18n.extract import sources

    found = []
    for path, method in sources():
        if method == "jinja2.ext:babel_extract":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("t", "t_plain"):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_compiled_templates_render_exactly_like_str_format() -> None:
    cases = [
        ("{message} [{source}: {code}]", {"message": 'it\'s "x" {y}', "source": 1, "code": None}),
        ("a\\b\n'{x}' {x}", {"x": "q"}),
        ("plain", {}),
        ("{a}{b}", {"a": 1.5, "b": "é"}),
    ]
    for template, params in cases:
        assert t(template, **params) == template.format(**params)
    with pytest.raises(KeyError):
        t("{missing}")
    assert t("{{braces}} {x:>3}", x=1) == "{braces}   1"  # unusual templates fall back to str.format_map


GOODS_WORDS = st.sampled_from(
    [
        "Men's",
        "women's",
        "T-shirts",
        "shirts",
        "of",
        "cotton",
        "knitted",
        "crocheted",
        "box",
        "set",
        "pair",
        "12",
        "2",
        "kg",
        "pcs",
        "HS",
        "8517",
        "%",
        "s",
        "min",
        "origin",
        "is",
        "required",
        "not",
        "more",
        "than",
        "the",
        "for",
        "use",
        "in,",
        "with",
        "other",
        "parts;",
        "articles",
        "[note:",
        "duty]",
        "=",
        "Free",
    ]
)


def _is_catalogue_entry(text: str) -> bool:
    return str(i18n.translations(ZH).gettext(text)) != text


GOODS_NOUNS = frozenset(["T-shirts", "shirts", "cotton", "knitted", "crocheted", "box", "set", "pair", "articles"])


@given(st.lists(GOODS_WORDS, min_size=2, max_size=12).map(" ".join))
def test_free_goods_descriptions_pass_through_unchanged(description: str) -> None:
    """Short templates ("{shown} of {total}", "{field} is required") must not read prose back as a message.

    A description names goods; words of templates and numbers alone ("8517 of 8517") are a template's
    own rendering, which no rule can tell from the message."""
    assume(GOODS_NOUNS & set(description.split()))
    if not _is_catalogue_entry(description):
        assert translate(description, ZH) == description


def test_prose_is_not_read_as_a_short_template_but_real_texts_still_are() -> None:
    for prose in (
        "Men's T-shirts of cotton, knitted",
        "Box of 12",
        "box of 12",
        "Articles for which an import license is required",
        "Natural boric acid containing not more than 85 % of H3BO3 calculated on the dry weight",
        "Articles of Brunei [Compiler's note: provision suspended.]",
        "HS cotton",
        "HS s",
        "Used s",
    ):
        assert translate(prose, ZH) == prose
    assert translate("3 of 10", ZH) == "顯示 3 筆,共 10 筆"
    assert translate("12 s", ZH) == "12 秒"
    assert translate("items[0].origin is required", ZH) == "items[0].origin 為必填"
    assert translate("5 % of TWD 1,000.00 = TWD 50.00", ZH) == "TWD 1,000.00 的 5% = TWD 50.00"
    assert translate("Duty (Free) = TWD 0.00", ZH) == "關稅(Free)= TWD 0.00"
    assert translate("rule phones-cn v2: Phones from CN", ZH) == "規則 phones-cn 第 2 版:Phones from CN"
    assert translate("origin CN", ZH) == "原產地 CN" and translate("origin Men's", ZH) == "origin Men's"
    assert translate("rule ALL-US v1: US watch", ZH) == "規則 ALL-US 第 1 版:US watch"
    assert translate("No user 'bob' [permits: missing_permit]", ZH) == "查無使用者「bob」 [permits: missing_permit]"


def test_real_goods_descriptions_are_left_alone() -> None:
    """Every description of the WCO HS 2022 nomenclature passes through unchanged (bar exact catalogue entries)."""
    import csv

    from tests.conftest import shared_data

    path = shared_data("hs", "wco_hs2022_datasets", "harmonized-system.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        texts = {row["description"].strip() for row in csv.DictReader(fh)}
    changed = [x for x in texts if x and not _is_catalogue_entry(x) and translate(x, ZH) != x]
    assert len(texts) > 5000 and changed == []


def test_what_a_person_wrote_stays_as_written_inside_a_translated_sentence() -> None:
    """Placeholders named for data (`written_*`, descriptions, names, rate texts) are never translated, even
    when the text equals a catalogue entry; stored rows and `Msg` objects read alike."""
    assert translate("Used", ZH) != "Used", "the word is a catalogue entry (a page label)"
    msg = t("Targeting rule {rule} v{version}: {written_reason}", rule="R1", version=1, written_reason="Used")
    assert translate(msg, ZH) == translate(str(msg), ZH) == "目標規則 R1 第 1 版:Used"
    revoked = t("revoked by the issuer (log entry {index}): {written_reason}", index=3, written_reason="Office")
    assert translate(str(revoked), ZH) == "已由簽發者撤銷(日誌第 3 筆):Office"


def test_joined_messages_translate_each_part_and_free_text_is_not_read_as_a_list() -> None:
    parts = [t("{count} signatures refused: {reasons}", count=2, reasons="x"), t("checkpoint has no signatures")]
    both = i18n.joined(parts)
    assert str(both) == f"{parts[0]}; {parts[1]}"
    shown = translate(both, ZH)
    assert translate(parts[1], ZH) in shown and "checkpoint has no signatures" not in shown
    assert translate("Used; Office", ZH) == "Used; Office"


def test_a_country_placeholder_explains_only_a_country_code() -> None:
    """Hypothesis found 'origin HS' (free text) read back as the risk reason 'origin {origin}'."""
    assert translate("origin HS", ZH) == "origin HS"
    assert translate("origin CN", ZH) == "原產地 CN"
    assert translate("shipped from VN", ZH) == "自 VN 起運"
