"""The 監査ログ screens as an auditor uses them: JST date ranges, a role filter, Japanese labels,
readable details, a pager with the count, the CSV of the filtered log (audited), and an honest
signing status on the verification screen."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from app.audit import trail
from app.core.actor import Actor
from app.models import AuditCheckpoint, AuditEvent

UTC = dt.UTC


@pytest.fixture
def auditor(make_user, login):
    user, secret = make_user("Auditor", roster=None)
    login(user.username, totp_secret=secret)
    return user


@pytest.fixture
def at(monkeypatch):
    """Record an event as if it happened at a given UTC instant (the trail's clock is set;
    the event is written, chained and hashed as any other)."""

    def record(session, when: dt.datetime, actor: Actor, action: str, **kwargs):
        monkeypatch.setattr(trail, "utcnow", lambda: when)
        event = trail.record(session, actor, action, commit=True, **kwargs)
        monkeypatch.undo()
        return event

    return record


def _text(response) -> str:
    return response.get_data(as_text=True)


def _names(html: str, names: list[str]) -> list[str]:
    return [n for n in names if n in html]


def test_a_date_range_is_whole_jst_days_compared_in_utc(client, session, auditor, at):
    """12/01〜12/07 means 12/01 00:00 JST to 12/07 24:00 JST: an event at 23:59:59 JST on
    11/30 (14:59:59 UTC) is out, one at 00:00 JST on 12/01 (15:00 UTC on 11/30) is in."""
    for name, when in (
        ("before-edge", dt.datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC)),
        ("first-second", dt.datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC)),
        ("last-second", dt.datetime(2026, 12, 7, 14, 59, 59, tzinfo=UTC)),
        ("after-edge", dt.datetime(2026, 12, 7, 15, 0, 0, tzinfo=UTC)),
    ):
        at(session, when, Actor(name=name, user_id=1, roles=("Operator",)), "people.search")
    names = ["before-edge", "first-second", "last-second", "after-edge"]
    html = _text(
        client.get("/auditlogview/list/?from=2026/12/01&to=令和8年12月7日&action=people.search")
    )
    assert _names(html, names) == ["first-second", "last-second"]
    assert "全 2 件中 1〜2 件を表示" in html
    # The list shows JST: the first event of 12/01 reads as midnight.
    assert "2026/12/01 00:00:00" in html and "2026/12/07 23:59:59" in html
    # What was typed stays in the form, as typed.
    assert 'value="令和8年12月7日"' in html
    # The ISO form an <input type=date> sends works the same.
    iso = _text(client.get("/auditlogview/list/?from=2026-12-08&action=people.search"))
    assert _names(iso, names) == ["after-edge"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026/02/30", "期間（開始日）: 存在しない日付です: 2026/2/30"),
        ("to=12/07/2026", "期間（終了日）: 日付の形式が不正です"),
        ("from=2026/12/08&to=2026/12/01", "期間: 開始日 2026/12/08 が終了日 2026/12/01 より後です"),
        ("role=Root", "ロール: 一覧にないロールです"),
        ("action=nothing.here", "操作: 一覧にない操作です"),
        ("page=abc", "ページ: 1 以上の整数で指定してください"),
    ],
    ids=["no-such-day", "us-order", "reversed", "role", "action", "page"],
)
def test_a_bad_filter_is_named_in_japanese_and_lists_nothing(
    client, session, auditor, query, message
):
    response = client.get(f"/auditlogview/list/?{query}")
    html = _text(response)
    assert response.status_code == 400
    assert message in html
    assert 'id="audit-events"' not in html and "Traceback" not in html


def test_the_role_filter_selects_events_by_any_of_the_actors_roles(client, session, auditor, at):
    when = dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    at(session, when, Actor(name="op-only", user_id=1, roles=("Operator",)), "people.view")
    at(
        session,
        when,
        Actor(name="staff-op", user_id=2, roles=("ClientStaff", "Operator")),
        "people.view",
    )
    at(session, when, Actor(name="staff-only", user_id=3, roles=("ClientStaff",)), "people.view")
    at(session, when, Actor.system("job:mail"), "people.view")
    names = ["op-only", "staff-op", "staff-only", "自動処理（メール送信）"]
    by_role = {
        role: _names(
            _text(client.get(f"/auditlogview/list/?role={role}&action=people.view")), names
        )
        for role in ("Operator", "ClientStaff", "-", "Auditor")
    }
    assert by_role == {
        "Operator": ["op-only", "staff-op"],
        "ClientStaff": ["staff-op", "staff-only"],
        "-": ["自動処理（メール送信）"],
        "Auditor": [],
    }


def test_actions_results_and_actors_read_in_japanese(client, session, auditor, at):
    when = dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    at(
        session,
        when,
        Actor.system("job:mail"),
        "mailing.resend",
        object_type="delivery",
        object_ids=[7],
    )
    at(session, when, Actor(name="public-form"), "intake.auth", outcome="failure")
    at(session, when, Actor.system("cli:root"), "keys.rotate")
    html = _text(client.get("/auditlogview/list/?from=2026/12/01&to=2026/12/01"))
    for shown in (
        "自動処理（メール送信）",
        "回答フォーム（本人・家族）",
        "コマンドライン（root）",
        "依頼の再送",
        "回答フォームの本人確認",
        "鍵の更新",
        "送付 7",
        "失敗",
        "成功",
    ):
        assert shown in html, shown
    for raw in (">job:mail<", ">public-form<", ">mailing.resend<", ">success<", ">None<"):
        assert raw not in html, raw
    # The filter's choices are Japanese too, grouped by area.
    assert '<optgroup label="鍵管理">' in html and ">監査担当者</option>" in html


def test_an_events_details_are_labelled_pairs_not_json(client, session, auditor, at):
    event = at(
        session,
        dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        Actor(name="staff", user_id=5, roles=("ClientStaff",)),
        "campaign.targets_load",
        details={"rows": 12, "households": 3, "contact_differs": False, "roles": ["Operator"]},
    )
    html = _text(client.get(f"/auditlogview/show/{event.seq}"))
    for shown in (
        "<dt>行数</dt><dd>12</dd>",
        "<dt>世帯数</dt><dd>3</dd>",
        "<dt>連絡先の相違</dt><dd>いいえ</dd>",
        "<dt>ロール</dt><dd>事務取扱担当者（受注者）</dd>",
        "対象者リストの取込",
        "発注者担当者",
    ):
        assert shown in html, shown
    assert "{&#34;" not in html and '{"' not in html
    assert client.get("/auditlogview/show/99999999999").status_code == 404


def test_the_list_pages_with_a_count(client, session, auditor, at):
    when = dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    for i in range(120):
        at(session, when, Actor(name=f"p{i:03d}", user_id=1, roles=("Operator",)), "people.view")
    base = "/auditlogview/list/?action=people.view"
    first = _text(client.get(base))
    assert "全 120 件中 1〜50 件を表示（1 / 3 ページ）" in first
    assert "p119" in first and "p069" not in first  # newest first
    last = _text(client.get(base + "&page=3"))
    assert "全 120 件中 101〜120 件を表示（3 / 3 ページ）" in last
    assert "p000" in last and "page=2" in last and "action=people.view" in last


def _csv(response, encoding="utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data().decode(encoding))))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp932"])
def test_the_filtered_log_downloads_as_csv_and_the_download_is_audited(
    client, session, auditor, at, encoding
):
    in_range = dt.datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 12/01 00:00 JST
    at(
        session,
        in_range,
        Actor(name="op", user_id=1, roles=("Operator",)),
        "number.reveal",
        object_type="person",
        object_ids=[42],
        purpose="源泉徴収票作成事務",
    )
    at(session, in_range, Actor.system("job:mail"), "number.reveal")
    at(
        session,
        in_range - dt.timedelta(seconds=1),
        Actor(name="op", user_id=1, roles=("Operator",)),
        "number.reveal",
    )
    response = client.get(
        f"/auditlogview/download?from=2026/12/01&role=Operator&action=number.*&encoding={encoding}"
    )
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert (
        "%E7%9B%A3%E6%9F%BB%E3%83%AD%E3%82%B0_20261201-.csv"
        in response.headers["Content-Disposition"]
    )
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    rows = _csv(response, encoding)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["番号", "日時（JST）", "実行者"]
    assert len(body) == 1
    row = dict(zip(header, body[0], strict=True))
    assert row["日時（JST）"] == "2026/12/01 00:00:00"
    assert (row["操作"], row["操作コード"], row["結果"]) == (
        "個人番号の表示",
        "number.reveal",
        "成功",
    )
    assert (row["ロール"], row["対象種別"], row["対象ID"]) == (
        "事務取扱担当者（受注者）",
        "人物",
        "42",
    )
    assert row["利用目的"] == "源泉徴収票作成事務"
    session.expire_all()
    exported = session.execute(
        select(AuditEvent).where(AuditEvent.action == "audit.export")
    ).scalar_one()
    assert exported.actor_name == auditor.username
    assert json.loads(exported.details) == {
        "count": 1,
        "criteria": {"action": "number.*", "period_from": "2026-12-01", "role": "Operator"},
        "encoding": encoding,
    }


def test_a_download_with_a_bad_filter_sends_nothing_and_records_nothing(client, session, auditor):
    response = client.get("/auditlogview/download?to=2026/13/01")
    assert response.status_code == 400
    assert "期間（終了日）: 存在しない日付です" in _text(response)
    assert "attachment" not in response.headers.get("Content-Disposition", "")
    assert (
        session.execute(select(AuditEvent).where(AuditEvent.action == "audit.export")).first()
        is None
    )


def test_only_auditors_read_or_download_the_log(client, make_user, login):
    user, secret = make_user("Operator")
    login(user.username, totp_secret=secret)
    assert client.get("/auditlogview/list/").status_code == 403
    assert client.get("/auditlogview/download").status_code == 403


def test_the_verification_screen_states_its_signing_status(client, session, auditor):
    """A fresh instance has signed checkpoints (init signs one): the status is 完全 and says how
    much is signed. With none the status is 「署名済みチェックポイントなし」
    (tests/audit/test_labels.py and tests/hostile/test_insider_auditsign.py)."""
    assert session.execute(select(AuditCheckpoint)).first() is not None
    html = _text(client.get("/audit-verify/"))
    status = html.split('id="audit-status"', 1)[1].split("</td>", 1)[0]
    assert "完全（" in status and "署名済み" in status
    assert "署名済みチェックポイントなし" not in html


def test_a_page_past_the_end_says_so(client, session, auditor, at):
    at(
        session,
        dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        Actor(name="p", user_id=1),
        "people.view",
    )
    html = _text(client.get("/auditlogview/list/?action=people.view&page=4"))
    assert "全 1 件（1 ページ）です。4 ページ目はありません" in html
    assert 'id="audit-events"' not in html


def test_the_actor_filter_is_a_plain_substring(client, session, auditor, at):
    when = dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    for name in ("yamada_1", "yamadax1", "Sato%1"):
        at(session, when, Actor(name=name, user_id=1), "people.view")
    names = ["yamada_1", "yamadax1", "Sato%1"]

    def found(text: str) -> list[str]:
        return _names(
            _text(client.get(f"/auditlogview/list/?action=people.view&actor={text}")), names
        )

    assert found("yamada_") == ["yamada_1"]  # _ is a character, not a wildcard
    assert found("%25") == ["Sato%1"]
    assert found("YAMADA") == ["yamada_1", "yamadax1"]


def test_a_character_cp932_cannot_hold_refuses_that_encoding_by_row_and_column(
    client, session, auditor, at
):
    """Never a silent replacement: the auditor is told which row and column, and to use UTF-8;
    nothing is sent and no download is recorded."""
    at(
        session,
        dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        Actor(name="op", user_id=1, roles=("Operator",), user_agent="Mozilla/5.0 🦊"),
        "people.view",
    )
    query = "from=2026/12/02&to=2026/12/02&action=people.view"
    refused = client.get(f"/auditlogview/download?{query}&encoding=cp932")
    assert refused.status_code == 400
    assert "行 2: ブラウザ: 「🦊」は CP932（Shift_JIS）で表せません" in _text(refused)
    assert (
        session.execute(select(AuditEvent).where(AuditEvent.action == "audit.export")).first()
        is None
    )
    utf8 = client.get(f"/auditlogview/download?{query}&encoding=utf-8-sig")
    assert "Mozilla/5.0 🦊" in utf8.get_data().decode("utf-8-sig")
