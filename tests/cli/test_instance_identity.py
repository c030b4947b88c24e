"""`mynumber init` asks who the instance speaks for (client, operator, sender, desk phone and
e-mail) or takes it from options and the environment, refuses placeholders, and keeps the
answers in the instance's settings file, which the environment still overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import settings

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = {
    "MYNUMBER_CLIENT_NAME": "見本機構",
    "MYNUMBER_OPERATOR_NAME": "見本BPO株式会社",
    "MYNUMBER_MAIL_FROM": "mynumber@bpo.example.jp",
    "MYNUMBER_DESK_PHONE": "03-5555-0100",
    "MYNUMBER_DESK_EMAIL": "desk@bpo.example.jp",
}


def init(home: Path, *args: str, answers: str = "", env: dict | None = None):
    """`mynumber init` in a fresh interpreter, typed answers on its standard input."""
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", "from app.cli import main; main()", "init", *args],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MYNUMBER_HOME": str(home),
            "MYNUMBER_SQLITE_SYNCHRONOUS": "OFF",
            **(env or {}),
        },
        input=answers,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_init_asks_once_refusing_placeholders_and_stores_the_answers(tmp_path):
    home = tmp_path / "instance"
    typed = [
        ANSWERS["MYNUMBER_CLIENT_NAME"],
        ANSWERS["MYNUMBER_OPERATOR_NAME"],
        "mynumber-vault@localhost",  # the old default: asked again
        ANSWERS["MYNUMBER_MAIL_FROM"],
        "0120-000-000",  # the old placeholder: asked again
        ANSWERS["MYNUMBER_DESK_PHONE"],
        ANSWERS["MYNUMBER_DESK_EMAIL"],
    ]
    first = init(home, "--interactive", answers="\n".join(typed) + "\n")
    assert first.returncode == 0, first.stderr
    assert "エラー: 送信元メールアドレス: 「mynumber-vault@localhost」は仮の値です" in first.stderr
    assert "エラー: 問い合わせ窓口の電話番号: 「0120-000-000」は仮の値です" in first.stderr
    assert "Error" not in first.stdout + first.stderr
    stored = home / settings.INSTANCE_SETTINGS_FILE
    assert json.loads(stored.read_text(encoding="utf-8")) == ANSWERS
    assert stored.stat().st_mode & 0o777 == 0o600
    # Asked once: a second init asks nothing and keeps them.
    second = init(home, "--interactive", answers="")
    assert second.returncode == 0, second.stderr
    assert "発注者名:" not in second.stdout
    assert json.loads(stored.read_text(encoding="utf-8")) == ANSWERS


def test_ctrl_d_at_a_prompt_stops_init_in_japanese_and_stores_nothing(tmp_path):
    home = tmp_path / "instance"
    # Two answers, then the end of input (Ctrl-D) at the third prompt.
    typed = ANSWERS["MYNUMBER_CLIENT_NAME"] + "\n" + ANSWERS["MYNUMBER_OPERATOR_NAME"] + "\n"
    stopped = init(home, "--interactive", answers=typed)
    assert stopped.returncode != 0
    assert "初期化を中止しました。入力した設定は保存していません。" in stopped.stderr
    assert "Aborted" not in stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not (home / settings.INSTANCE_SETTINGS_FILE).exists()


def test_without_a_terminal_init_says_what_is_missing_and_options_fill_it(tmp_path):
    home = tmp_path / "instance"
    bare = init(home)  # stdin is not a terminal: nothing asked
    assert bare.returncode == 0, bare.stderr
    assert (
        "送付と印刷はできません" in bare.stderr
        and "発注者名（MYNUMBER_CLIENT_NAME）" in bare.stderr
    )
    given = init(
        home,
        "--client-name",
        "見本機構",
        "--operator-name",
        "見本BPO株式会社",
        "--mail-from",
        "mynumber@bpo.example.jp",
        env={"MYNUMBER_DESK_PHONE": "03-5555-0100", "MYNUMBER_DESK_EMAIL": "desk@bpo.example.jp"},
    )
    assert given.returncode == 0, given.stderr
    assert "送付と印刷はできません" not in given.stderr
    assert settings.instance_settings(home) == ANSWERS


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--desk-email", "mynumber-desk@example.jp", "「mynumber-desk@example.jp」は仮の値です"),
        ("--client-name", "発注者", "「発注者」は仮の値です"),
        ("--desk-phone", "電話してください", "電話番号（例: 03-1234-5678）"),
        ("--mail-from", "vault@example.jp\r\nBcc: x@example.jp", "改行は使えません"),
    ],
)
def test_a_bad_value_is_refused_in_one_japanese_line(tmp_path, option, value, message):
    result = init(tmp_path / "instance", option, value)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / settings.INSTANCE_SETTINGS_FILE).exists()


def test_the_environment_overrides_the_stored_settings(tmp_path, monkeypatch):
    home = tmp_path / "instance"
    settings.save_instance_settings(home, ANSWERS)
    for name in ANSWERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MYNUMBER_PUBLIC_FORM_URL", raising=False)
    config = settings.load({"MYNUMBER_HOME": str(home)})
    assert config["CLIENT_NAME"] == "見本機構" and settings.missing_identity(config) == []
    assert config["PUBLIC_FORM_URL"] == "http://127.0.0.1:8001"
    monkeypatch.setenv("MYNUMBER_CLIENT_NAME", "別の機構")
    assert settings.load({"MYNUMBER_HOME": str(home)})["CLIENT_NAME"] == "別の機構"
    settings.save_instance_settings(home, {"MYNUMBER_CLIENT_NAME": ""})
    monkeypatch.delenv("MYNUMBER_CLIENT_NAME")
    config = settings.load({"MYNUMBER_HOME": str(home)})
    assert settings.missing_identity(config) == ["発注者名（MYNUMBER_CLIENT_NAME）"]


def test_the_form_url_follows_the_port_run_serves():
    assert settings.form_url_for_port("127.0.0.1", 8101) == "http://127.0.0.1:8101"
    assert settings.form_url_for_port("0.0.0.0", 8101) == "http://127.0.0.1:8101"  # noqa: S104
    assert settings.form_url_for_port("::1", 8101) == "http://[::1]:8101"
