"""``mynumber report monthly``: PDF and CSV by hand, --send through a real SMTP server, and a
bad month as one Japanese line with exit status 1."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from app.models import AuditEvent, ReportDelivery
from tests.cli_runner import run_cli
from tests.conftest import pdf_text

ROOT = Path(__file__).resolve().parents[3]


def run(args, instance, **extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MYNUMBER_HOME": instance["MYNUMBER_HOME"],
        "DATABASE_URL": instance["SQLALCHEMY_DATABASE_URI"],
        "MYNUMBER_CLIENT_NAME": "見本機構",
        **extra,
    }
    return run_cli(["report", "monthly", *args], env, 180)


def test_a_bad_month_is_one_japanese_line(app, instance, tmp_path):
    result = run(["--month", "2026-13", "--out", str(tmp_path / "r.pdf")], instance)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("エラー: 月の指定が正しくありません")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r.pdf").exists()


def test_pdf_csv_and_send(app, session, instance, tmp_path, smtp_server, needs_pdf):
    pdf, csv = tmp_path / "report.pdf", tmp_path / "report.csv"
    result = run(
        ["--month", "2026-10", "--out", str(pdf), "--csv", str(csv), "--send"],
        instance,
        SMTP_URL=smtp_server.url,
        MYNUMBER_REPORT_RECIPIENTS="keiri@client.example.jp",
    )
    assert result.returncode == 0, result.stderr
    assert "2026年10月分" in result.stdout and "送信しました" in result.stdout
    assert "利用実績報告書（2026年10月分）" in pdf_text(pdf.read_bytes())
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
    [message] = smtp_server.messages
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == pdf.read_bytes()
    session.expire_all()
    [sent] = session.execute(select(ReportDelivery)).scalars().all()
    assert (sent.status, sent.trigger, sent.requested_by.startswith("cli:")) == (
        "sent",
        "manual",
        True,
    )
    actions = set(session.execute(select(AuditEvent.action)).scalars())
    assert {"report.generate", "report.download", "report.send"} <= actions


def test_send_without_recipients_fails_with_the_setting_named(app, instance, tmp_path, needs_pdf):
    result = run(["--month", "2026-10", "--out", str(tmp_path / "r.pdf"), "--send"], instance)
    assert result.returncode == 1
    assert "MYNUMBER_REPORT_RECIPIENTS" in result.stderr


def test_a_sent_month_is_written_out_unchanged_and_corrected_only_with_a_reason(
    app, session, instance, tmp_path, smtp_server, needs_pdf
):
    mail = {"SMTP_URL": smtp_server.url, "MYNUMBER_REPORT_RECIPIENTS": "keiri@client.example.jp"}
    first, again, corrected = (tmp_path / f"{n}.pdf" for n in ("first", "again", "corrected"))
    assert (
        run(["--month", "2026-10", "--out", str(first), "--send"], instance, **mail).returncode == 0
    )
    result = run(["--month", "2026-10", "--out", str(again)], instance)
    assert result.returncode == 0, result.stderr
    assert "送付済みの版を書き出しました" in result.stdout
    assert again.read_bytes() == first.read_bytes()
    result = run(
        ["--month", "2026-10", "--out", str(corrected), "--correct", "件数の訂正"], instance
    )
    assert result.returncode == 0, result.stderr
    assert "第2版" in result.stdout
    assert "第2版（訂正版）" in pdf_text(corrected.read_bytes())
