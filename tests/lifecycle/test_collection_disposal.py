"""Disposal reaches what the collection work keeps about a person: ID images kept by
the client's policy and the sealed scans and keyings of a paper envelope in progress."""

import datetime as dt
import uuid

from sqlalchemy import func, select

from app.collection import intake
from app.models import PaperIntake, PaperPart, RetainedDocument
from tests.lifecycle.helpers import dispose, population
from tests.support import actor


def test_kept_images_and_paper_keyings_go_with_the_person(session, vault, app, make_user):
    gone, kept = population(session, vault, n=2)
    rows = {}
    for someone in (gone, kept):
        from app.models import Person

        req, _token = intake.create_request(
            session, actor("Operator"), session.get(Person, someone.id), purpose_text="目的"
        )
        paper = PaperIntake(
            id=uuid.uuid4(),
            request_id=req.id,
            submission_id=uuid.uuid4(),
            received_on=dt.date(2026, 11, 1),
            recorded_by="op",
        )
        session.add(paper)
        session.flush()
        session.add(
            PaperPart(
                intake_id=paper.id,
                subject_ref=str(someone.id),
                part="number",
                size_bytes=10,
                sealed=b"sealed-" + someone.id.bytes,
                digest="0" * 64,
                entered_by="op",
            )
        )
        session.add(
            RetainedDocument(
                person_id=someone.id,
                request_id=req.id,
                doc_type="license",
                media_type="image/jpeg",
                ciphertext=b"MV" + someone.id.bytes * 3,
            )
        )
        rows[someone.id] = req.id
    session.commit()

    dispose(session, vault, app, make_user, [gone.id])
    session.expire_all()

    def count(model, column, value):
        return session.execute(
            select(func.count()).select_from(model).where(column == value)
        ).scalar_one()

    assert count(RetainedDocument, RetainedDocument.person_id, gone.id) == 0
    assert count(PaperPart, PaperPart.subject_ref, str(gone.id)) == 0
    assert count(RetainedDocument, RetainedDocument.person_id, kept.id) == 1
    assert count(PaperPart, PaperPart.subject_ref, str(kept.id)) == 1
