"""The remaining operator inputs, each refused with a Japanese message naming the field."""

import uuid

import pytest

from app.collection import campaigns, mailings, paper, verification
from app.models import CampaignKind, Delivery, DeliveryStatus, PostageRate
from tests.collection import flows

TODAY = campaigns.jptime.today_jst()


def _envelope(app, session, operator, code):
    req = flows.request_of(code)
    return req, paper.receive_envelope(
        session,
        operator,
        request_code=req.request_code,
        received_on=TODAY,
        tracking=None,
        carrier=app.config["KIT_CARRIER"],
        method=app.config["KIT_RETURN_METHOD"],
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "氏名: 入力してください"),
        ({"relation": ""}, "続柄: 入力してください"),
        ({"birth_date": "2999-01-01"}, "未来の日付"),
        ({"birth_date": "そのうち"}, "生年月日: 日付の形式"),
        ({"kana": "ア" * 101}, "100文字以内"),
    ],
)
def test_paper_added_dependent(app, session, staff, operators, kwargs, message):
    flows.campaign_with_targets(app, staff)
    _req, item = _envelope(app, session, operators[0], "E1002")
    values = {
        "name": "髙橋 花",
        "kana": None,
        "relation": "子",
        "birth_date": "2019-04-01",
    } | kwargs
    with pytest.raises(paper.PaperError, match=message):
        paper.add_dependent(
            session, app.extensions["mynumber_keyring"], operators[0], item, **values
        )


def test_paper_dependents_and_exclusions_only_where_they_apply(app, session, staff, operators):
    keyring = app.extensions["mynumber_keyring"]
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req, item = _envelope(app, session, operators[0], "X2001")
    with pytest.raises(paper.PaperError, match="役職員の初回"):
        paper.add_dependent(
            session,
            keyring,
            operators[0],
            item,
            name="a",
            kana=None,
            relation="子",
            birth_date="2019-04-01",
        )
    with pytest.raises(paper.PaperError, match="対象外にできません"):
        paper.exclude(session, keyring, operators[0], item, str(req.person_id), "deceased")
    with pytest.raises(paper.PaperError, match="スキャン画像が見つかりません"):
        paper.remove_scan(session, operators[0], item, uuid.uuid4())


def test_paper_exclusion_needs_a_reason(app, session, staff, operators):
    keyring = app.extensions["mynumber_keyring"]
    flows.campaign_with_targets(app, staff)
    req, item = _envelope(app, session, operators[0], "E1001")
    dependent = str(req.person.dependents[0].id)
    with pytest.raises(paper.PaperError, match="理由: 選んでください"):
        paper.exclude(session, keyring, operators[0], item, dependent, "bored")
    paper.exclude(session, keyring, operators[0], item, dependent, "left_household")
    state = {s.subject.ref: s for s in paper.state(session, item)}
    assert state[dependent].excluded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sent_on": "2999-01-01"}, "未来の日付"),
        ({"sent_on": "先週"}, "返送日: 日付の形式"),
        ({"carrier": ""}, "運送事業者と種別"),
        ({"tracking": "番号なし"}, "英数字とハイフン"),
        ({"method": "不明な種別", "cost_yen": None}, "料金"),
    ],
)
def test_returning_documents(app, session, staff, operators, kwargs, message):
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    _req, item = _envelope(app, session, operators[0], "X2001")
    values = {
        "sent_on": TODAY,
        "carrier": "日本郵便",
        "method": "簡易書留",
        "cost_yen": 580,
        "tracking": None,
    } | kwargs
    with pytest.raises(paper.PaperError, match=message):
        paper.return_documents(session, operators[0], item, **values)


def test_returning_documents_once(app, session, staff, operators):
    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    _req, item = _envelope(app, session, operators[0], "X2001")
    # The postage ledger takes a carrier and service of the fee table only.
    session.add(
        PostageRate(
            carrier="日本郵便",
            method="簡易書留",
            price_yen=580,
            effective_from=TODAY.replace(day=1),
            created_by="test",
        )
    )
    session.commit()
    paper.return_documents(
        session,
        operators[0],
        item,
        sent_on=TODAY,
        carrier="日本郵便",
        method="簡易書留",
        cost_yen=580,
    )
    with pytest.raises(paper.PaperError, match="返送済み"):
        paper.return_documents(
            session,
            operators[0],
            item,
            sent_on=TODAY,
            carrier="日本郵便",
            method="簡易書留",
            cost_yen=580,
        )


def test_a_deficiency_needs_a_reason_and_a_resend_a_channel(
    app, session, staff, operators, form_app
):
    from app.collection import links, terms
    from tests.collection.conftest import ICHIRO_BIRTH, NUMBER_ICHIRO
    from tests.public_form.conftest import Subject

    flows.campaign_with_targets(app, staff, kind=CampaignKind.EXTERNAL)
    req = flows.request_of("X2001")
    subject = Subject(form_app.test_client())
    subject.login(links.token_for(app.extensions["mynumber_keyring"], req.id), ICHIRO_BIRTH)
    subject.consent()
    subject.number(str(req.person_id), NUMBER_ICHIRO)
    subject.card(str(req.person_id))
    subject.submit()
    case, _view = flows.claim_and_open(app, operators[0], req)
    with pytest.raises(terms.IntakeError, match="1つ以上選んでください"):
        verification.deficient(session, operators[0], case.id, [], None)
    session.rollback()
    with pytest.raises(terms.IntakeError, match="対象者が依頼に含まれていません"):
        verification.deficient(session, operators[0], case.id, [("nobody", "number_invalid")], None)
    session.rollback()
    delivery = Delivery(
        request_id=req.id, kind="request", seq=5, channel="email", status=DeliveryStatus.BOUNCED
    )
    session.add(delivery)
    session.flush()
    with pytest.raises(mailings.MailingError, match="送付方法が不正です"):
        mailings.resend(session, operators[0], delivery, "fax")
