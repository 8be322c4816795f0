"""Platform commands (db, users, tokens) in the reader's language; `smartcustoms --lang` for every command."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from smartcustoms.cli import _asked_language, app
from smartcustoms.platform.i18n import translate


def test_user_commands_answer_in_chinese_and_the_language_does_not_leak(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMARTCUSTOMS_LANG", raising=False)
    runner = CliRunner()
    r = runner.invoke(app, ["--lang", "zh-Hant", "db", "upgrade"])
    assert r.exit_code == 0 and r.output.strip() == "資料庫結構已是最新版本"
    r = runner.invoke(app, ["--lang", "zh-Hant", "users", "add", "lin", "--role", "trader", "--party-id", "TW9"])
    assert r.exit_code == 0 and "已建立使用者 lin(trader)" in r.output and "權杖:" in r.output
    assert "SMARTCUSTOMS_LANG" not in os.environ, "--lang holds for one command only"
    r = runner.invoke(app, ["users", "revoke", "lin"], env={"SMARTCUSTOMS_LANG": "zh-Hant"})
    assert r.output.strip() == "已撤銷 1 個權杖"
    r = runner.invoke(app, ["users", "revoke", "lin"])
    assert r.output.strip() == "0 token(s) revoked"
    r = runner.invoke(app, ["--lang", "zh-Hant", "users", "token", "nobody"])
    problem = r.exception.problems[0]  # type: ignore[union-attr]
    assert problem.code == "unknown_user" and translate(problem.message, "zh-Hant") == "查無使用者「nobody」"


def test_errors_printed_by_the_main_command_follow_lang_anywhere_on_the_line() -> None:
    assert _asked_language(["--lang", "zh-Hant", "users", "token", "x"]) == "zh-Hant"
    assert _asked_language(["declarations", "list", "--lang=en"]) == "en"
    assert _asked_language(["users", "token", "x"]) is None
