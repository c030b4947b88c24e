"""Postal kits and letters (spec 5.2-3), and print batches.

A kit is: the address sheet for a window envelope, the client's 案内文 with the 利用目的, the
Web 登録利用ガイド with the QR code, the 申請用紙 pre-filled with the subject's name, address
and request code, a 記入例, and the return-envelope label with a tracking-number field (the
return must be trackable: 履歴が追えるもの). Reminder and deficiency letters are the same set
with the client's reminder or deficiency text.

A print batch takes a campaign's pending letters in postal-code order and a job renders them
(WeasyPrint, Japanese font embedded) in parts of ``PRINT_CHUNK_LETTERS`` (memory grows with
the part size); the download merges the parts into one PDF. Rendered parts hold
names, addresses and link QR codes: they are sealed under a KEK-derived key, downloaded by an
operator (audited) and deleted when the batch is marked posted, which records postage per
letter (send side) and the billable 案内 / 督促 events.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.collection import campaigns, links, mailings, readiness, receive
from app.core import jptime
from app.core.actor import Actor
from app.models import (
    PRINT_FILE,
    Campaign,
    Channel,
    CollectionRequest,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    LetterKind,
    Person,
    PersonKind,
    PrintBatch,
    PrintBatchFile,
    utcnow,
)
from app.operations import billing, desk
from app.people import registry
from app.platform import outbox, pdf
from app.vault.envelopes import hold_kek

VIEW = mailings.VIEW
RENDER_PRINT_BATCH = "app.jobs.collection.render_print_batch"  # the job, by name
_LETTER = {
    DeliveryKind.REQUEST: (LetterKind.KIT_GUIDE, "収集キット"),
    DeliveryKind.REMINDER: (LetterKind.REMINDER_LETTER, "督促状"),
    DeliveryKind.DEFICIENCY: (LetterKind.DEFICIENCY_LETTER, "不備のお知らせ"),
}


class KitError(ValueError):
    """A Japanese message for the operator."""


@dataclass
class LetterDoc:
    kind: str
    kind_label: str
    request_code: str
    name: str
    kana: str | None
    postal_code: str
    address: str
    title: str
    body: str
    purpose: str
    deadline_text: str
    url: str
    qr: str
    employee: bool
    members: list[tuple[str, str]] = field(default_factory=list)
    fixes: list[tuple[str, str]] = field(default_factory=list)


def check_return_address(config) -> None:
    if not (config.get("OPERATOR_ADDRESS") and config.get("OPERATOR_POSTAL_CODE")):
        raise KitError(
            "返送先（受注者の住所）が設定されていません。MYNUMBER_OPERATOR_POSTAL_CODE と "
            "MYNUMBER_OPERATOR_ADDRESS を設定してください"
        )


def _context(config) -> dict:
    return {
        "client_name": config["CLIENT_NAME"],
        "operator_name": config["OPERATOR_NAME"],
        "operator_postal_code": config.get("OPERATOR_POSTAL_CODE", ""),
        "operator_address": config.get("OPERATOR_ADDRESS", ""),
        "desk_phone": config["DESK_PHONE"],
        "desk_email": config["DESK_EMAIL"],
        "desk_hours": desk.DESK_HOURS,
        "return_method": config.get("KIT_RETURN_METHOD", ""),
        "today": campaigns.format_date(jptime.today_jst()),
    }


def letter_doc(session: Session, vault, keyring, config, delivery: Delivery) -> LetterDoc:
    """Everything one letter prints (decrypts the address; the caller audits the render)."""
    req = session.get(CollectionRequest, delivery.request_id)
    person = session.get(Person, req.person_id)
    address = registry.decrypt_address(session, vault, person)
    if not (address and person.postal_code):
        raise KitError(f"{person.name}: 住所または郵便番号が登録されていないため郵送できません")
    kind, label = _LETTER[delivery.kind]
    subject, body = campaigns.letter(session, req.campaign_id, kind)
    values = mailings.letter_values(session, keyring, config, delivery, req)
    members = [(person.name, "本人")]
    employee = person.kind == PersonKind.EMPLOYEE
    if employee:
        members += [
            (d.name, d.relation or "")
            for d in person.dependents
            if d.status == "active" and d.kind == PersonKind.DEPENDENT
        ]
    fixes = []
    if delivery.kind == DeliveryKind.DEFICIENCY:
        fixes = receive.subject_status(session, req).fixes
    return LetterDoc(
        kind=delivery.kind,
        kind_label=label,
        request_code=req.request_code or "",
        name=person.name,
        kana=person.name_kana,
        postal_code=person.postal_code,
        address=address,
        title=campaigns.fill(subject, values),
        body=campaigns.fill(body, values),
        purpose=req.purpose_text,
        deadline_text=values["期限"],
        url=values["リンク"],
        qr=pdf.qr_data_uri(values["リンク"], scale=8),
        employee=employee,
        members=members,
        fixes=fixes,
    )


def render(docs: list[LetterDoc], config, title: str = "収集キット") -> bytes:
    return pdf.render_pdf(
        "pdf/collection_letters.html", letters=docs, ctx=_context(config), title=title
    )


def preview(session: Session, vault, keyring, actor: Actor, delivery_id: int) -> bytes:
    """One letter as a PDF (a reprint, or a look before the batch). Audited first."""
    policy.require(actor, "can_print", VIEW)
    config = current_app.config
    check_return_address(config)
    refused = readiness.refusal(session, actor, config, "print.preview", "delivery", [delivery_id])
    if refused:
        raise KitError(refused)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.channel != Channel.POST:
        raise KitError("郵送の送付が見つかりません")
    trail.record(
        session,
        actor,
        "print.preview",
        object_type="delivery",
        object_ids=[delivery.id, delivery.request_id],
        commit=True,
    )
    return render([letter_doc(session, vault, keyring, config, delivery)], config)


# -- print batches --------------------------------------------------------------------------
def pending_letters(session: Session, campaign_id: int) -> list[Delivery]:
    return list(
        session.execute(
            select(Delivery)
            .join(CollectionRequest, CollectionRequest.id == Delivery.request_id)
            .join(Person, Person.id == CollectionRequest.person_id)
            .where(
                Delivery.campaign_id == campaign_id,
                Delivery.channel == Channel.POST,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.print_batch_id.is_(None),
            )
            .order_by(Person.postal_code, CollectionRequest.request_code, Delivery.id)
        ).scalars()
    )


def create_batch(session: Session, actor: Actor, campaign: Campaign) -> PrintBatch:
    """Collect the campaign's pending letters (kits, reminder and deficiency letters) in
    postal-code order. Committed; the caller enqueues ``render_batch`` with the batch id."""
    policy.require(actor, "can_print", campaigns.VIEW)
    check_return_address(current_app.config)
    refused = readiness.refusal(
        session, actor, current_app.config, "print.batch_create", "campaign", [campaign.id]
    )
    if refused:
        raise KitError(refused)
    letters = []
    for delivery in pending_letters(session, campaign.id):
        req = session.get(CollectionRequest, delivery.request_id)
        if mailings.still_needed(req, delivery):
            letters.append(delivery)
        else:
            delivery.status = DeliveryStatus.CANCELLED
    if not letters:
        session.commit()
        raise KitError("印刷待ちの郵送物はありません")
    batch = PrintBatch(
        campaign_id=campaign.id, status="queued", item_count=len(letters), created_by=actor.name
    )
    session.add(batch)
    session.flush()
    for position, delivery in enumerate(letters, 1):
        delivery.print_batch_id = batch.id
        delivery.batch_position = position
        delivery.status = DeliveryStatus.BATCHED
    trail.record(
        session,
        actor,
        "print.batch_create",
        object_type="print_batch",
        object_ids=[batch.id, campaign.id],
        details={"letters": len(letters)},
    )
    outbox.add(session, RENDER_PRINT_BATCH, batch.id)
    session.commit()
    return batch


def batch_letters(session: Session, batch_id: int) -> list[Delivery]:
    return list(
        session.execute(
            select(Delivery)
            .where(Delivery.print_batch_id == batch_id)
            .order_by(Delivery.batch_position)
        ).scalars()
    )


def render_batch(session: Session, vault, keyring, batch_id: int, actor: Actor) -> str:
    """Render a batch into sealed PDF parts. Idempotent: a ready or posted batch is left as
    it is; a failed one is rendered again from scratch."""
    config = current_app.config
    batch = session.get(PrintBatch, batch_id)
    if batch is None:
        return "missing"
    if batch.status in ("ready", "posted"):
        return batch.status
    batch.status = "rendering"
    batch.error = None
    session.execute(delete(PrintBatchFile).where(PrintBatchFile.batch_id == batch.id))
    session.commit()
    letters = batch_letters(session, batch.id)
    trail.record(
        session,
        actor,
        "print.render",
        object_type="print_batch",
        object_ids=[batch.id],
        details={"letters": len(letters)},
        commit=True,
    )
    chunk = max(1, int(config.get("PRINT_CHUNK_LETTERS", 50)))
    # Progress lives with the job's state (its outbox row). Each letter counts twice: once
    # when its content (address, QR code) is ready, once when its part's PDF is laid out;
    # a letter is ~240 ms of work, so the bar moves while a 50-letter part renders.
    key = outbox.key_for(RENDER_PRINT_BATCH, batch.id)
    steps = 2 * len(letters)
    outbox.report_progress(session, key, 0, steps)
    try:
        for part_no, start in enumerate(range(0, len(letters), chunk), 1):
            group = letters[start : start + chunk]
            docs = []
            for delivery in group:
                docs.append(letter_doc(session, vault, keyring, config, delivery))
                outbox.report_progress(session, key, start * 2 + len(docs), steps)
            data = render(docs, config, title=f"印刷バッチ {batch.id}-{part_no}")
            # pypdf takes ~150 ms to import: loaded by the print job, not by every process.
            from pypdf import PdfReader

            pages = len(PdfReader(io.BytesIO(data)).pages)
            hold_kek(session)  # sealed under the current KEK: no rotation until committed
            session.add(
                PrintBatchFile(
                    batch_id=batch.id,
                    part_no=part_no,
                    first_position=group[0].batch_position,
                    last_position=group[-1].batch_position,
                    pages=pages,
                    size_bytes=len(data),
                    sealed=vault.seal_system(
                        PRINT_FILE.purpose, PRINT_FILE.aad(batch_id=batch.id, part_no=part_no), data
                    ),
                )
            )
            del data, docs
            session.commit()
            outbox.report_progress(session, key, (start + len(group)) * 2, steps)
    except (KitError, links.LinkUnavailable, pdf.PdfUnavailable) as exc:
        session.rollback()
        batch = session.get(PrintBatch, batch_id)
        batch.status = "failed"
        batch.error = str(exc)[:300]
        session.commit()
        return "failed"
    batch.status = "ready"
    batch.rendered_at = utcnow()
    session.commit()
    return "ready"


def batch_file(session: Session, vault, actor: Actor, batch: PrintBatch, part_no: int) -> bytes:
    """One rendered part, decrypted for download. Audited first."""
    policy.require(actor, "can_print", VIEW)
    row = session.execute(
        select(PrintBatchFile).where(
            PrintBatchFile.batch_id == batch.id, PrintBatchFile.part_no == part_no
        )
    ).scalar_one_or_none()
    if row is None:
        raise KitError("印刷ファイルがありません（発送済み、または作成前です）")
    trail.record(
        session,
        actor,
        "print.download",
        object_type="print_batch",
        object_ids=[batch.id],
        details={"part": part_no, "positions": [row.first_position, row.last_position]},
        commit=True,
    )
    return vault.open_system(
        PRINT_FILE.purpose, PRINT_FILE.aad(batch_id=batch.id, part_no=part_no), row.sealed
    )


def batch_pdf(session: Session, vault, actor: Actor, batch: PrintBatch) -> bytes:
    """The whole batch as one PDF, in postal-code order: the parts merged (pypdf) at download
    time, so a worker never holds more than one part while rendering. Audited first."""
    policy.require(actor, "can_print", VIEW)
    rows = list(
        session.execute(
            select(PrintBatchFile)
            .where(PrintBatchFile.batch_id == batch.id)
            .order_by(PrintBatchFile.part_no)
        ).scalars()
    )
    if not rows:
        raise KitError("印刷ファイルがありません（発送済み、または作成前です）")
    trail.record(
        session,
        actor,
        "print.download",
        object_type="print_batch",
        object_ids=[batch.id],
        details={"part": "all", "parts": len(rows)},
        commit=True,
    )
    # pypdf takes ~150 ms to import: loaded for a download, not by every process.
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for row in rows:
        data = vault.open_system(
            PRINT_FILE.purpose, PRINT_FILE.aad(batch_id=batch.id, part_no=row.part_no), row.sealed
        )
        writer.append(PdfReader(io.BytesIO(data)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mark_posted(
    session: Session,
    actor: Actor,
    batch: PrintBatch,
    *,
    posted_on: dt.date,
    carrier: str,
    method: str,
    cost_yen: int | None = None,
) -> int:
    """The batch went to the post office: each letter is sent (history, billing), postage is
    recorded per letter on the send side, and the rendered files are deleted. Audited."""
    policy.require(actor, "can_post", VIEW)
    if batch.status != "ready":
        raise KitError("印刷ファイルが作成済みのバッチだけを発送済みにできます")
    if posted_on > jptime.today_jst():
        raise KitError("発送日: 未来の日付は指定できません")
    carrier, method = (carrier or "").strip(), (method or "").strip()
    if not carrier or not method:
        raise KitError("運送事業者と種別を入力してください")
    trail.record(
        session,
        actor,
        "print.posted",
        object_type="print_batch",
        object_ids=[batch.id],
        details={"posted_on": posted_on.isoformat(), "carrier": carrier, "method": method},
    )
    when = dt.datetime.combine(posted_on, dt.time(12, 0), tzinfo=jptime.JST)
    count = 0
    for delivery in batch_letters(session, batch.id):
        if delivery.status != DeliveryStatus.BATCHED:
            continue
        req = session.get(CollectionRequest, delivery.request_id)
        billing.record_postage(
            session,
            direction="send",
            carrier=carrier,
            method=method,
            posted_on=posted_on,
            actor=actor,
            cost_yen=cost_yen,
            request_id=req.id,
            note=f"{_LETTER[delivery.kind][1]}（印刷バッチ {batch.id}）",
        )
        mailings.on_sent(session, actor, delivery, req, when)
        count += 1
    session.execute(delete(PrintBatchFile).where(PrintBatchFile.batch_id == batch.id))
    batch.status = "posted"
    batch.posted_on = posted_on
    batch.posted_by = actor.name
    session.flush()
    return count
