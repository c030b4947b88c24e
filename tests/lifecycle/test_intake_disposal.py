"""Disposal reaches what the public form received: sealed parts are deleted (they are sealed
to the intake key, so destroying the person's data key alone would not reach them)."""

from sqlalchemy import select

from app.models import CollectionRequest, CollectionRequestStatus, SubmissionPart
from tests.lifecycle.helpers import Someone, dispose, traces_left
from tests.public_form.conftest import NUMBER_ADDED, NUMBER_DEP, NUMBER_SELF, pdf


def _submit(household, subject):
    head, dep = str(household["head"].id), str(household["dep"].id)
    subject.login(household["token"])
    subject.consent()
    subject.number(head, NUMBER_SELF)
    subject.card(head)
    subject.number(dep, NUMBER_DEP)
    subject.card(dep, self_role=False)
    response = subject.post(
        "/dependents/add",
        {"name": "山田 次郎", "kana": "ヤマダ ジロウ", "relation": "子", "year": "2020"}
        | {"month": "6", "day": "1"},
    )
    assert response.headers["Location"].endswith("/p/new1/number")
    subject.number("new1", NUMBER_ADDED)
    subject.documents(
        "new1", "other", {"number_doc": (pdf(), "juminhyo.pdf")}, {"number_doc_type": "juminhyo"}
    )
    assert subject.submit().headers["Location"].endswith("/done")


def _parts(session):
    return {
        (p.subject_ref, p.part, p.doc_type): bytes(p.sealed)
        for p in session.execute(select(SubmissionPart)).scalars()
    }


def test_disposing_the_employee_deletes_their_parts_and_keeps_the_dependents(
    session, vault, app, make_user, household, subject
):
    _submit(household, subject)
    session.expire_all()
    head, dep = household["head"], household["dep"]
    parts = _parts(session)
    head_parts = {k: v for k, v in parts.items() if k[0] in (str(head.id), "new1")}
    assert {k[1] for k in head_parts} == {"number", "document", "identity"}
    history = session.execute(select(CollectionRequestStatus)).scalars().all()
    assert any(h.note for h in history)  # 受付番号 …

    dispose(session, vault, app, make_user, [head.id])
    session.expire_all()
    left = _parts(session)
    assert {k[0] for k in left} == {str(dep.id)}
    request = session.get(CollectionRequest, household["req"].id)
    assert request.person_id == head.id and request.decline_note is None
    assert request.locked_at is not None  # the link no longer opens
    assert all(h.note is None for h in session.execute(select(CollectionRequestStatus)).scalars())
    gone = Someone(head.id, "山田 太郎", "", head.code or "", NUMBER_SELF, "")
    gone.traces = list(head_parts.values())
    assert traces_left(app, [gone]) == []

    dispose(session, vault, app, make_user, [dep.id])
    assert _parts(session) == {}


def test_the_return_archive_holds_what_the_form_received(
    session, vault, app, household, subject, tmp_path
):
    from app.lifecycle import returns
    from app.vault import sealed

    _submit(household, subject)
    session.expire_all()
    private_text, public_text = sealed.generate_recipient()
    out = tmp_path / "r.mnva"
    result = returns.export_archive(
        session,
        vault,
        returns_actor(),
        out,
        sealed.load_public(public_text),
        "返却",
        client_name="見本市役所",
        audit_public_pem=vault.keys.audit_public_key_pem(),
    )
    assert result.counts["documents"] == 4
    opened = sealed.open_archive(
        out,
        sealed.load_private(private_text),
        tmp_path / "o",
        operator_key=vault.keys.audit_signing_key().public_key(),
    )
    folder = opened.folder
    docs = sorted((folder / "documents").rglob("*.*"))
    assert len(docs) == 4
    assert {d.read_bytes()[:4] for d in docs} <= {b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"%PDF"}
    parts = (folder / "submission_parts.csv").read_text(encoding="utf-8-sig")
    assert NUMBER_SELF in parts and NUMBER_DEP in parts and NUMBER_ADDED in parts
    assert "山田 次郎" in parts and "ヤマダ ジロウ" in parts
    history = (folder / "request_history.csv").read_text(encoding="utf-8-sig")
    assert "受付番号" in history


def returns_actor():
    from app.access.policy import ShellActor

    return ShellActor(name="cli:test")


def test_the_employees_submission_still_opens_after_the_dependent_is_disposed(
    session, vault, app, make_user, household, subject
):
    import pytest

    from app.collection import opening
    from app.models import Submission
    from tests.lifecycle.helpers import user_actor
    from tests.support import give_case

    _submit(household, subject)
    session.expire_all()
    submission_id = session.execute(select(Submission.id)).scalar_one()
    dispose(session, vault, app, make_user, [household["dep"].id])
    operator, _ = make_user("Operator")
    give_case(session, household["req"], user_actor(operator, "Operator"))
    opened = opening.open_submission(
        session, vault.keys, user_actor(operator, "Operator"), submission_id, "確認"
    )
    refs = {s.ref for s in opened.subjects}
    assert str(household["head"].id) in refs and str(household["dep"].id) not in refs
    head = next(s for s in opened.subjects if s.ref == str(household["head"].id))
    assert head.number == NUMBER_SELF

    dispose(session, vault, app, make_user, [household["head"].id])
    with pytest.raises(LookupError, match="廃棄済み"):
        opening.open_submission(
            session, vault.keys, user_actor(operator, "Operator"), submission_id, "確認"
        )
