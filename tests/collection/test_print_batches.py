"""Print batches: postal-code order, parts merged into one PDF on download, files sealed and
deleted once posted, letters no longer needed left out, no kit without a return address."""

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.collection import kits, mailings
from app.models import Delivery, DeliveryStatus, PrintBatchFile
from tests.collection import flows
from tests.collection.conftest import RETURN_ADDRESS
from tests.conftest import pdf_text

THREE_BY_POST = (
    "職員番号,本人区分,続柄,氏名,氏名カナ,生年月日,郵便番号,住所,メールアドレス,送付方法\r\n"
    "P1,本人,,北 一郎,,1980/01/01,900-0001,沖縄県那覇市1,,郵送\r\n"
    "P2,本人,,南 二郎,,1980/01/01,060-0001,北海道札幌市1,,郵送\r\n"
    "P3,本人,,東 三郎,,1980/01/01,100-0001,東京都千代田区1,,郵送\r\n"
)


def test_postal_order_parts_and_one_merged_pdf(app, session, staff, operators, jobs, needs_pdf):
    app.config["PRINT_CHUNK_LETTERS"] = 1
    operator = operators[0]
    campaign, _ = flows.campaign_with_targets(app, staff, csv_text=THREE_BY_POST)
    mailings.dispatch(session, operator, campaign)
    # One of them declines before printing: the kit is left out.
    declined = flows.request_of("P1")
    declined.status = "declined"
    session.commit()
    batch, first_part = flows.print_batch(app, campaign, operator, jobs)
    assert batch.item_count == 2
    parts = (
        session.execute(select(PrintBatchFile).where(PrintBatchFile.batch_id == batch.id))
        .scalars()
        .all()
    )
    assert [(p.part_no, p.pages) for p in parts] == [(1, 6), (2, 6)]
    assert all(b"%PDF" not in p.sealed for p in parts)  # sealed at rest
    assert "南 二郎" in pdf_text(first_part) and "東 三郎" not in pdf_text(first_part)
    vault = app.extensions["mynumber_vault"]
    merged = kits.batch_pdf(session, vault, operator, batch)
    text = pdf_text(merged)
    assert len(PdfReader(io.BytesIO(merged)).pages) == 12
    assert text.index("南 二郎") < text.index("東 三郎")  # 060- before 100-
    assert "北 一郎" not in text
    assert RETURN_ADDRESS in text
    cancelled = session.execute(
        select(Delivery).where(Delivery.request_id == declined.id)
    ).scalar_one()
    assert cancelled.status == DeliveryStatus.CANCELLED

    kits.mark_posted(
        session,
        operator,
        batch,
        posted_on=flows.campaigns.jptime.today_jst(),
        carrier="日本郵便",
        method=app.config["KIT_SEND_METHOD"],
    )
    session.commit()
    assert session.execute(select(PrintBatchFile)).first() is None
    with pytest.raises(kits.KitError, match="印刷ファイルがありません"):
        kits.batch_pdf(session, vault, operator, batch)
    with pytest.raises(kits.KitError, match="作成済みのバッチだけ"):
        kits.mark_posted(
            session,
            operator,
            batch,
            posted_on=flows.campaigns.jptime.today_jst(),
            carrier="x",
            method="y",
        )


def test_no_kit_without_a_return_address(app, session, staff, operators):
    app.config["OPERATOR_ADDRESS"] = ""
    campaign, _ = flows.campaign_with_targets(app, staff, csv_text=THREE_BY_POST)
    mailings.dispatch(session, operators[0], campaign)
    with pytest.raises(kits.KitError, match="MYNUMBER_OPERATOR_ADDRESS"):
        kits.create_batch(session, operators[0], campaign)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"posted_on": flows.campaigns.jptime.today_jst().replace(year=2999)}, "未来の日付"),
        ({"carrier": " "}, "運送事業者と種別"),
        ({"method": "存在しない種別"}, "料金表"),
        ({"cost_yen": -5}, "0以上"),
    ],
)
def test_posting_bad_input(app, session, staff, operators, jobs, needs_pdf, kwargs, message):
    from app.operations import billing

    campaign, _ = flows.campaign_with_targets(app, staff, csv_text=THREE_BY_POST)
    mailings.dispatch(session, operators[0], campaign)
    batch, _ = flows.print_batch(app, campaign, operators[0], jobs)
    values = {
        "posted_on": flows.campaigns.jptime.today_jst(),
        "carrier": app.config["KIT_CARRIER"],
        "method": app.config["KIT_SEND_METHOD"],
        "cost_yen": None,
    } | kwargs
    with pytest.raises((kits.KitError, billing.BillingError), match=message):
        kits.mark_posted(session, operators[0], batch, **values)
