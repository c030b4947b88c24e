"""Numbers slipped past the free-text filters by the way they are written: typed into a search
field (kept in the append-only audit log), or split by −, ー, ., / or two spaces in a reveal
purpose, an inquiry or a target list. One detector (app.core.mynumber.find_numbers) now reads them
all; each attack ends in a Japanese refusal naming the field, and an audit event that holds
the field's name, never the number."""

from __future__ import annotations

import unicodedata

import pytest
from sqlalchemy import select

from app.collection import campaigns, targets
from app.core import mynumber
from app.models import AuditEvent, CampaignKind, CollectionRequest, Inquiry, Person, db
from app.operations import desk
from tests.collection.conftest import (
    EMPLOYEE_CSV,
    collection_config,  # noqa: F401
    future_business_day,
)
from tests.hostile.conftest import assert_clear_refusal, audit_events, count, counts
from tests.support import add_household, leaks, post_form, written_bytes

# A valid number nobody in these tests holds (the household's own is SAMPLE_NUMBER).
TYPED = mynumber.make_valid("98765432109")
_WIDE = str.maketrans("0123456789", "０１２３４５６７８９")

# Every separator the old 12-digit filters let through, and a few they did catch.
SEPARATORS = {
    "minus-sign": "−",
    "long-vowel-mark": "ー",
    "half-width-long-vowel": "ｰ",
    "dot": ".",
    "full-width-dot": "．",
    "slash": "/",
    "full-width-slash": "／",
    "two-spaces": "  ",
    "hyphen-and-space": " - ",
    "em-dash": "—",
}


def _split(number: str, sep: str) -> str:
    return f"{number[:4]}{sep}{number[4:8]}{sep}{number[8:]}"


def _nowhere_written(app, *typed: str) -> None:
    """Neither the digits (every form tests.support knows) nor the typed text are stored."""
    assert leaks(app, [TYPED]) == []
    for label, data in written_bytes(app):
        for text in typed:
            for encoding in ("utf-8", "utf-16-le"):
                assert text.encode(encoding) not in data, label


def _no_number_in_the_audit_log() -> None:
    """The typed number is in no audit event, whatever surrounds its digits. (Not "no text
    the detector flags": a UUID in object_ids, 8171-163123323cf9, can hold 13 digits joined
    by a hyphen of which twelve pass the check digit by chance.)"""
    db.session.expire_all()
    for event in db.session.execute(select(AuditEvent)).scalars():
        for text in (event.details, event.purpose, event.object_ids, event.user_agent):
            digits = "".join(c for c in unicodedata.normalize("NFKC", text or "") if c.isdigit())
            assert TYPED not in digits, (event.action, text)


@pytest.fixture
def household(session, vault):
    head, _child = add_household(session, vault)
    return head


# -- row 3: a number typed into a search field ----------------------------------------------
@pytest.mark.parametrize(
    ("field", "typed", "label"),
    [
        ("name", TYPED, "氏名"),
        ("name", "見本 " + _split(TYPED, " "), "氏名"),
        ("name", TYPED.translate(_WIDE), "氏名"),
        ("kana", _split(TYPED, "ー"), "カナ"),
        ("code", TYPED, "職員番号・委員番号"),
        ("code", _split(TYPED, "-"), "職員番号・委員番号"),
    ],
    ids=["name-plain", "name-spaced", "name-full-width", "kana-long-vowel", "code", "code-dashed"],
)
def test_a_number_typed_into_a_people_search_field_is_refused_and_never_reaches_the_audit_log(
    app, client, make_user, login, household, field, typed, label
):
    user, secret = make_user("ClientStaff")
    login(user.username, totp_secret=secret)
    response = post_form(client, "/people/", {field: typed})
    html = assert_clear_refusal(
        response,
        f"{label}に個人番号と思われる12桁の数字が含まれています",
        "「個人番号（完全一致）」欄",
    )
    assert TYPED not in html and TYPED.translate(_WIDE) not in html  # not echoed back
    refused = audit_events("people.search", "denied")
    assert len(refused) == 1
    assert '"fields":["' + field + '"]' in refused[0].details.replace(" ", "")
    assert audit_events("people.search", "success") == []
    _no_number_in_the_audit_log()
    _nowhere_written(app, typed)


def test_a_search_by_name_logs_which_fields_were_given_never_their_text(
    client, make_user, login, household
):
    user, secret = make_user("ClientStaff")
    login(user.username, totp_secret=secret)
    page = post_form(
        client, "/people/", {"name": "見本", "kana": "ミホン"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "見本 太郎" in page
    (event,) = audit_events("people.search", "success")
    assert "見本" not in event.details and "ミホン" not in event.details
    assert "name" in event.details and "kana" in event.details


# -- row 3: a reveal purpose with the number split by other separators ------------------------
@pytest.mark.parametrize("sep", list(SEPARATORS.values()), ids=list(SEPARATORS))
def test_a_reveal_purpose_holding_a_number_split_by_any_separator_is_refused_and_audited(
    app, client, make_user, login, household, sep
):
    user, secret = make_user("ClientStaff")
    login(user.username, totp_secret=secret)
    purpose = f"{_split(TYPED, sep)} の源泉徴収票"
    response = post_form(
        client,
        f"/people/{household.id}/reveal",
        {"purpose": purpose},
        token_from=f"/people/{household.id}",
    )
    html = assert_clear_refusal(response, "利用目的に個人番号と思われる12桁の数字が含まれています")
    assert "1234 5678 9018" not in html  # the household's number was not revealed
    assert audit_events("number.reveal", "success") == []
    (refused,) = audit_events("number.reveal", "denied")
    assert refused.purpose is not None and "の源泉徴収票" in refused.purpose
    _no_number_in_the_audit_log()
    _nowhere_written(app, purpose, _split(TYPED, sep))


# -- row 4: an inquiry from the public contact form ------------------------------------------
def _inquiry(subject, **fields):
    values = {
        "name": "問合 太郎",
        "contact": "taro@example.jp",
        "category": desk.SUBJECT_CATEGORIES[0],
        "body": "書類の送り方を教えてください。",
        **fields,
    }
    subject.get("/contact")
    return subject.post("/contact", values)


@pytest.mark.parametrize("sep", list(SEPARATORS.values()), ids=list(SEPARATORS))
def test_an_inquiry_holding_a_number_split_by_any_separator_is_refused_and_not_stored(
    app, subject, sep
):
    body = f"私の番号は {_split(TYPED, sep)} です。登録されていますか。"
    response = _inquiry(subject, body=body)
    html = assert_clear_refusal(
        response, "お問い合わせ内容に個人番号と思われる12桁の数字が含まれています", status=422
    )
    assert _split(TYPED, sep) not in html  # the refused text is not echoed back
    assert count(Inquiry) == 0
    (refused,) = audit_events("inquiry.refused", "denied")
    assert '"field": "body"' in refused.details
    _no_number_in_the_audit_log()
    _nowhere_written(app, body)


@pytest.mark.parametrize(
    ("field", "label"),
    [("name", "お名前"), ("contact", "ご連絡先（メールアドレスまたは電話番号）")],
)
def test_an_inquiry_with_a_number_in_the_name_or_contact_is_refused(app, subject, field, label):
    response = _inquiry(subject, **{field: _split(TYPED, "．")})
    assert_clear_refusal(
        response, f"{label}に個人番号と思われる12桁の数字が含まれています", status=422
    )
    assert count(Inquiry) == 0
    assert audit_events("inquiry.refused", "denied")


def test_a_phone_number_and_a_date_in_an_inquiry_are_accepted(subject):
    body = "03-1234-5678 または 090-1234-5678 へ、2026/04/01～2026/04/30 の間にご連絡ください。"
    response = _inquiry(subject, contact="03-1234-5678", body=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert count(Inquiry) == 1


# -- row 4: a target list (mailed, and put in the status CSV) --------------------------------
HEADER = EMPLOYEE_CSV.splitlines()[0]
GOOD = "E1,本人,,山田 太郎,ヤマダ タロウ,1985/01/02,100-0001,東京都千代田区,a@example.jp,メール"


def _campaign(session, staff):
    campaign = campaigns.create_campaign(
        session,
        staff,
        name="番号の混入",
        kind=CampaignKind.EMPLOYEE,
        deadline=future_business_day(),
        purpose_text="源泉徴収票作成事務",
    )
    session.commit()
    return campaign


@pytest.mark.parametrize("sep", list(SEPARATORS.values()), ids=list(SEPARATORS))
def test_a_target_list_with_a_number_in_a_name_is_refused_with_the_row_and_field(
    app, session, vault, staff, sep
):
    campaign = _campaign(session, staff)
    second = GOOD.replace("E1,", "E2,").replace("山田 太郎", f"山田 {_split(TYPED, sep)}")
    data = ("\r\n".join([HEADER, GOOD, second]) + "\r\n").encode()
    before = counts(Person, CollectionRequest)
    with pytest.raises(targets.TargetFileError) as info:
        targets.load(session, vault, app.extensions["mynumber_keyring"], staff, campaign, data)
    session.rollback()
    assert info.value.problems == [
        "行 3: 氏名: 個人番号と思われる12桁の数字が含まれています。個人番号は入力しないでください。"
    ]
    assert counts(Person, CollectionRequest) == before
    assert audit_events("campaign.targets_rejected", "failure")
    _no_number_in_the_audit_log()
    _nowhere_written(app, _split(TYPED, sep))


def test_a_campaign_name_with_a_dotted_number_is_refused(session, staff):
    with pytest.raises(campaigns.CampaignError, match="名称に個人番号と思われる12桁の数字"):
        campaigns.create_campaign(
            session,
            staff,
            name=f"{_split(TYPED, '.')} の件",
            kind=CampaignKind.EMPLOYEE,
            deadline=future_business_day(),
            purpose_text="源泉徴収票作成事務",
        )
