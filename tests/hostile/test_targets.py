"""Hostile target lists (app/collection/targets.py) and their upload screen: every problem is a
``行 N: 項目: 理由`` line in Japanese, nothing is loaded when one row is bad, a rejected file is
audited, and a name full of markup is shown escaped to the client."""

from __future__ import annotations

import io

import pytest

from app.collection import campaigns, targets
from app.models import CampaignKind, CollectionRequest, Person

# The return address and fee table that issuing a request needs (autouse in this module).
from tests.collection.conftest import (
    EMPLOYEE_CSV,
    NUMBER_TARO,
    collection_config,  # noqa: F401
    future_business_day,
)
from tests.hostile.conftest import assert_clear_refusal, audit_events, counts
from tests.support import csrf_token

HEADER = EMPLOYEE_CSV.splitlines()[0]
GOOD = "E1,本人,,山田 太郎,ヤマダ タロウ,1985/01/02,100-0001,東京都千代田区,a@example.jp,メール"


def _campaign(session, staff):
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="敵対的入力",
        kind=CampaignKind.EMPLOYEE,
        deadline=future_business_day(),
        purpose_text="源泉徴収票作成事務",
    )
    session.commit()
    return campaign


def _file(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([HEADER, *lines]) + "\r\n").encode(encoding)


HOSTILE = {
    "nul-byte": (_file(GOOD.replace("山田 太郎", "山田\x00太郎")), "行 2: "),
    "rtl-override-in-name": (_file(GOOD.replace("山田 太郎", "山田\u202e太郎")), "行 2: 氏名: "),
    "escape-sequence-in-address": (
        _file(GOOD.replace("東京都千代田区", "東京都\x1b[2J千代田区")),
        "行 2: 住所: ",
    ),
    "number-hidden-with-zero-width-spaces": (
        _file(GOOD.replace("山田 太郎", "山田 " + "\u200b".join(NUMBER_TARO))),
        "行 2: 氏名: ",
    ),
    "number-in-full-width": (
        _file(
            GOOD.replace(
                "東京都千代田区",
                "東京都"
                + NUMBER_TARO.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
            )
        ),
        "行 2: 住所: 個人番号と思われる12桁の数字が含まれています",
    ),
    "header-injection": (
        ("=cmd|' /C calc'!A0," + HEADER + "\r\n" + GOOD + "\r\n").encode(),
        "行 1: ヘッダー: ",
    ),
    "truncated-quote": (_file('E1,本人,,"山田 太郎'), "行 2: "),
    "binary-garbage": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "行 1: "),
    "utf16": (_file(GOOD, encoding="utf-16"), "行 1: "),
    "oversize-name": (_file(GOOD.replace("山田 太郎", "山" * 5000)), "行 2: 氏名: "),
    "sql-in-email": (
        _file(GOOD.replace("a@example.jp", "a'--@example.jp;DROP TABLE person")),
        "行 2: メールアドレス: ",
    ),
    "script-in-kana": (_file(GOOD.replace("ヤマダ タロウ", "<script>")), "行 2: 氏名カナ: "),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_target_list_is_refused_whole(app, session, vault, staff, case):
    data, phrase = HOSTILE[case]
    campaign = _campaign(session, staff)
    # A good household after the bad line: it must not be loaded either.
    data += "E2,本人,,山田 次郎,,1985/01/03,,,b@example.jp,メール\r\n".encode()
    before = counts(Person, CollectionRequest)
    with pytest.raises(targets.TargetFileError) as info:
        targets.load(session, vault, app.extensions["mynumber_keyring"], staff, campaign, data)
    session.rollback()
    problems = info.value.problems
    assert problems and all(p.startswith("行 ") for p in problems), problems
    assert any(p.startswith(phrase) for p in problems), problems
    assert all("Traceback" not in p and NUMBER_TARO not in p for p in problems)
    assert counts(Person, CollectionRequest) == before
    assert audit_events("campaign.targets_rejected", "failure")


def _upload(client, cid: str, data: bytes, filename: str = "targets.csv"):
    """Post the file and read its result page (the job ran inline meanwhile)."""
    token = csrf_token(client, f"/campaigns/{cid}")
    response = client.post(
        f"/campaigns/{cid}/targets",
        data={"file": (io.BytesIO(data), filename), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return client.get(response.headers["Location"])


def test_the_upload_screen_lists_the_problems_in_japanese(session, staff, client, signed_in):
    campaign = _campaign(session, staff)
    signed_in("ClientStaff")
    response = _upload(client, str(campaign.id), HOSTILE["rtl-override-in-name"][0])
    html = assert_clear_refusal(response, "登録しませんでした", "行 2: 氏名: ", status=200)
    assert "\u202e" not in html
    assert counts(Person, CollectionRequest) == {"person": 0, "collection_request": 0}


def test_a_script_name_on_the_target_list_is_escaped_on_the_campaign_page(
    session, staff, client, signed_in
):
    campaign = _campaign(session, staff)
    name = "<img src=x onerror=alert(1)>山田"
    signed_in("ClientStaff")
    response = _upload(client, str(campaign.id), _file(GOOD.replace("山田 太郎", name)))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith(f"/campaigns/{campaign.id}")
    html = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;山田" in html


def test_formula_names_in_the_status_csv_are_neutralised(session, staff, client, signed_in):
    campaign = _campaign(session, staff)
    signed_in("ClientStaff")
    lines = [
        GOOD.replace("山田 太郎", "=1+2").replace("E1,", "E1,"),
        GOOD.replace("山田 太郎", "@SUM(A1)").replace("E1,", "E2,"),
        GOOD.replace("山田 太郎", "+81-3").replace("E1,", "E3,"),
        GOOD.replace("山田 太郎", "-cmd").replace("E1,", "E4,"),
    ]
    response = _upload(client, str(campaign.id), _file(*lines))
    assert response.headers["Location"].endswith(f"/campaigns/{campaign.id}")
    body = client.get(f"/campaigns/{campaign.id}/statuses.csv").get_data()
    text = body.decode("utf-8-sig")
    for formula in ("=1+2", "@SUM(A1)", "+81-3", "-cmd"):
        assert f"'{formula}" in text
        assert f",{formula}" not in text and f"\n{formula}" not in text
