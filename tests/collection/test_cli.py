"""`mynumber campaign …`: every command and every bad flag ends in one Japanese line and a
non-zero exit, never a traceback."""

import pytest
from sqlalchemy import select

from app.cli import mynumber_group
from app.models import Campaign, CollectionRequest, PrintBatch
from tests.collection.conftest import EMPLOYEE_CSV, future_business_day


def _run(app, *args):
    return app.test_cli_runner().invoke(mynumber_group, args=[*args])


def _create(app, *extra):
    return _run(
        app,
        "campaign",
        "create",
        "--name",
        "CLI 収集",
        "--kind",
        "employee",
        "--deadline",
        future_business_day().isoformat(),
        *extra,
    )


def test_a_campaign_from_the_command_line(app, session, tmp_path, needs_pdf):
    result = _create(app)
    assert result.exit_code == 0, result.output
    campaign = session.execute(select(Campaign)).scalar_one()
    cid = str(campaign.id)
    template = tmp_path / "template.csv"
    assert (
        _run(app, "campaign", "template", "--kind", "employee", "--out", str(template)).exit_code
        == 0
    )
    assert template.read_bytes().startswith("\ufeff職員番号".encode())
    again = _run(app, "campaign", "template", "--kind", "employee", "--out", str(template))
    assert again.exit_code == 1 and "既にあります" in again.output

    bad = tmp_path / "bad.csv"
    bad.write_text(EMPLOYEE_CSV.replace("1985/01/02", "1985/02/31"), encoding="utf-8")
    result = _run(app, "campaign", "targets", cid, str(bad))
    assert result.exit_code == 1
    assert (
        "行 2: 生年月日: 存在しない日付です" in result.output and "Traceback" not in result.output
    )
    good = tmp_path / "good.csv"
    good.write_text(EMPLOYEE_CSV, encoding="utf-8-sig")
    dry = _run(app, "campaign", "targets", cid, str(good), "--dry-run")
    assert dry.exit_code == 0 and "登録していません" in dry.output
    assert session.execute(select(CollectionRequest)).first() is None
    result = _run(app, "campaign", "targets", cid, str(good))
    assert result.exit_code == 0 and "依頼 2 件（メール 1、郵送 1）" in result.output

    result = _run(app, "campaign", "send", cid)
    assert result.exit_code == 0 and "メール 1 件" in result.output and "郵送 1 件" in result.output
    result = _run(app, "campaign", "print", cid)
    assert result.exit_code == 0 and "ready" in result.output, result.output
    assert session.execute(select(PrintBatch.status)).scalar_one() == "ready"
    result = _run(app, "campaign", "print", cid)
    assert result.exit_code == 1 and "印刷待ちの郵送物はありません" in result.output

    out = tmp_path / "status.csv"
    result = _run(app, "campaign", "status", cid, "--csv", str(out))
    assert result.exit_code == 0 and "送付済 1" in result.output and "作成 1" in result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["campaign", "create", "--name", "x", "--kind", "nobody", "--deadline", "2030-01-01"],
            "nobody",
        ),
        (
            ["campaign", "create", "--name", "x", "--kind", "employee", "--deadline", "いつか"],
            "日付の形式",
        ),
        (
            ["campaign", "create", "--name", "x", "--kind", "external", "--deadline", "2030-01-10"],
            "対象月",
        ),
        (["campaign", "create", "--kind", "employee", "--deadline", "2030-01-10"], "--name"),
        (["campaign", "targets", "abc", "x.csv"], "キャンペーンIDは数字です"),
        (["campaign", "targets", "999", "x.csv"], "キャンペーンが見つかりません"),
        (["campaign", "send", "999"], "キャンペーンが見つかりません"),
        (["campaign", "print", "x"], "キャンペーンIDは数字です"),
        (["campaign", "status", "999"], "キャンペーンが見つかりません"),
        (["campaign", "template", "--kind", "vip", "--out", "x.csv"], "vip"),
    ],
)
def test_bad_flags(app, session, args, message):
    result = _run(app, *args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_file(app, session, tmp_path):
    assert _create(app).exit_code == 0
    cid = str(session.execute(select(Campaign.id)).scalar_one())
    result = _run(app, "campaign", "targets", cid, str(tmp_path / "none.csv"))
    assert result.exit_code == 1 and "ファイルが見つかりません" in result.output
