"""The subject's steps: link → birth date → 利用目的 and consent → each person's number and
documents → confirmation → receipt; the status page after that; 提供しない; the contact page.

Every route behind the two factors goes through ``_subject()``: the session must be bound to
the request (id and token hash), younger than INTAKE_SESSION_MINUTES, and the request must be
usable. Numbers and files are sealed by ``app.collection.drafts`` within the request that carries
them; nothing a subject typed is ever echoed back into a page.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import time
from functools import cache, wraps
from uuid import UUID

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import joinedload

from app.collection import drafts, receive, requests, subjects, terms, uploads
from app.collection.terms import IntakeError
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.core.fields import has_hidden_characters
from app.models import CollectionRequest, RequestStatus, db
from app.operations import desk
from app.platform import formcheck, outbox
from app.platform.dbroles import form_guarded

bp = Blueprint("form", __name__, template_folder="templates", static_folder=None)

# Endpoints behind the two factors (rate-limited per token in public_form._rate_limits).
SUBJECT_ENDPOINTS = (
    "form.consent",
    "form.household",
    "form.number",
    "form.documents",
    "form.add_dependent",
    "form.exclude",
    "form.include",
    "form.remove_added",
    "form.confirm",
    "form.submit",
    "form.status",
    "form.decline",
)


def _actor() -> Actor:
    return Actor(
        name="public-form",
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )


# Names of the dependents added on this visit, by ref: their identity is sealed (the form
# cannot read it back), so the browser's session keeps what the subject typed, so that two
# children read as themselves and the spelling can be checked. Gone with the session.
ADDED_NAMES = "added_names"
ADDED_NAME_SHOWN = 40  # characters kept for display (the session is a cookie)


def subject_name(subject) -> str:
    """The name the form shows for a subject: on record, typed on this visit, or the
    numbered label of an added dependent."""
    if subject.role == "added":
        typed = (session.get(ADDED_NAMES) or {}).get(subject.ref)
        return typed or subject.added_label()
    return subject.display_name()


def subject_label(subject) -> str:
    """The name and, once, who the subject is (ご本人 or the relation)."""
    if subject.role == "self":
        return f"{subject_name(subject)}（ご本人）"
    if subject.relation:
        return f"{subject_name(subject)}（{subject.relation}）"
    return subject_name(subject)


@bp.app_context_processor
def _subject_labels() -> dict:
    return {"subject_name": subject_name, "subject_label": subject_label}


def _public_key():
    return current_app.extensions["intake_public_key"]


def _page(template: str, status: int = 200, **context):
    return render_template(f"public/{template}", **context), status


def _message(title: str, message: str, status: int = 200, link: tuple | None = None):
    return _page("message.html", status, title=title, message=message, link=link)


def _unlock_line() -> str:
    """How to get a locked link opened again: by phone when the desk has one (the page says
    call, so it gives the number), else through the contact form."""
    phone = current_app.config["DESK_PHONE"]
    if phone:
        return (
            f"ロックの解除は、お問い合わせ窓口へお電話ください（電話 {phone}、"
            f"受付時間 {desk.DESK_HOURS}）。ご本人確認のうえ解除します。"
        )
    return (
        "ロックの解除は、このページ下の「お問い合わせ窓口」のフォームからご依頼ください"
        f"（受付時間 {desk.DESK_HOURS}）。"
    )


def _desk_line() -> str:
    cfg = current_app.config
    return f"お問い合わせ窓口（電話 {cfg['DESK_PHONE']}、{cfg['DESK_EMAIL']}）"


# -- entry --------------------------------------------------------------------------------
@bp.get(formcheck.HEALTH_PATH)
def health():
    """The portal asks this before it sends links or prints QR codes: the form answers here
    and can reach its database. Says nothing about any request."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok", service=formcheck.SERVICE)


@bp.get("/")
def landing():
    return _page("landing.html")


@bp.get("/r/<token>")
def enter(token: str):
    """The QR code / e-mail link. Says nothing about the subject: only whether the link can be
    used. The token goes into the session and the browser moves on to a URL without it."""
    session.clear()
    req = requests.lookup(db.session, token)
    if req is None:
        return _message(
            "リンクが正しくありません",
            "このリンクは無効です。案内文の QR コードを読み取り直すか、メールのリンクを"
            f"そのまま開いてください。解決しない場合は{_desk_line()}へご連絡ください。",
            404,
        )
    state = requests.entry_state(req)
    if state != "ok":
        return _blocked(state)
    session["rid"] = str(req.id)
    session["bind"] = req.token_hash.hex()
    session["auth"] = False
    return redirect(url_for("form.verify"))


def _blocked(state: str):
    if state == "cancelled":
        return _message(
            "このリンクは使用できません",
            "このリンクは使用済み、または新しいリンクの発行により無効になりました。"
            f"最新の案内をご確認いただくか、{_desk_line()}へご連絡ください。",
            410,
        )
    if state == "locked":
        return _message(
            "入力がロックされています",
            "生年月日の入力を続けて誤ったため、安全のためこのリンクをロックしました。"
            + _unlock_line(),
            423,
        )
    return _message(
        "リンクの有効期限が切れています",
        f"このリンクの有効期限が過ぎました。新しいリンクの発行は{_desk_line()}へご依頼ください。",
        410,
    )


@cache
def _bound_request_query():
    """The request by id, with its person in the same query: nearly every step needs it
    (birth date, who is in the household), and holding it here keeps it in the session for
    the whole request. Built once: composing the loader options and the form's column guard
    for every request cost more CPU than running the query."""
    return form_guarded(
        select(CollectionRequest)
        .options(joinedload(CollectionRequest.person))
        .where(CollectionRequest.id == bindparam("rid"))
    )


def _bound_request():
    """The request this session is bound to, or None."""
    rid = session.get("rid")
    bind = session.get("bind")
    if not rid or not bind:
        return None
    try:
        request_id = UUID(rid)
    except ValueError:
        return None
    req = db.session.execute(_bound_request_query(), {"rid": request_id}).scalar_one_or_none()
    if req is None or not hmac.compare_digest(req.token_hash.hex(), bind):
        return None
    return req


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    """Second factor: the birth date the subject knows. A first submission also shows the
    purpose and its consent here: both in one step, two requests fewer per flow. Without the
    tick the subject is asked on the consent page after the birth date, as before."""
    req = _bound_request()
    if req is None:
        return _session_over()
    state = requests.entry_state(req)
    if state != "ok":
        session.clear()
        return _blocked(state)
    errors: list[str] = []
    max_failures = current_app.config["INTAKE_MAX_FAILURES"]
    first = req.status == RequestStatus.ISSUED
    # 提供しない: the second button of a first submission's page, after the birth date only.
    declining = first and request.form.get("next") == "decline"
    agreed = first and not declining and request.form.get("agree") == "yes"
    if request.method == "POST":
        try:
            birth = _parse_birth_date(request.form)
        except IntakeError as exc:
            errors.append(str(exc))
        else:
            # Before the check commits (and expires ``req``): read only, nothing created.
            if declining:
                target = url_for("form.decline")
            else:
                target = _after_consent(req) if agreed else _after_login(req)
            result = requests.verify_birth_date(db.session, req, birth, _actor(), max_failures)
            if result.locked:
                session.clear()
                return _blocked("locked")
            if result.ok:
                rid, bind = session["rid"], session["bind"]
                session.clear()  # a fresh session from here on
                session.permanent = True
                session.update(rid=rid, bind=bind, auth=True, auth_at=time.time())
                if agreed:
                    session["consent_at"] = time.time()
                return redirect(target)
            errors.append(
                f"生年月日: ご登録の生年月日と一致しません（あと{result.remaining}回誤ると"
                "ロックされます）"
            )
    return _page(
        "verify.html",
        200 if not errors else 422,
        errors=errors,
        years=_year_options(),
        chosen=_chosen_date(request.form),
        purpose=req.purpose_text if first else None,
        agreed=agreed,
        can_decline=first,
    )


def _chosen_date(form) -> dict[str, str]:
    """The year, month and day the subject picked, to select them again after an error:
    only values that are plain numbers (they go back into ``selected`` options)."""
    return {k: form.get(k, "") for k in ("year", "month", "day") if form.get(k, "").isdigit()}


def _after_consent(req) -> str:
    """Where a first submission goes once the consent is given on the birth-date page: the
    household list for an employee, else the first missing step. Reads only (the draft is
    created by the first thing stored), so it can run before the birth-date check commits."""
    if subjects.is_employee_request(db.session, req):
        return url_for("form.household")
    if drafts.draft_for(db.session, req, _public_key(), create=False) is not None:
        g.req = req
        return _next_url()
    listed = subjects.listed_subjects(db.session, req)
    if not listed:
        return url_for("form.household")
    return url_for("form.number", ref=listed[0].ref)


def _after_login(req) -> str:
    if req.status == RequestStatus.ISSUED:
        return url_for("form.consent")
    return url_for("form.status")


def _parse_birth_date(form) -> dt.date:
    try:
        year, month, day = (int(form.get(k, "")) for k in ("year", "month", "day"))
    except ValueError:
        raise IntakeError("生年月日: 年・月・日をすべて選んでください", "birth_date") from None
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise IntakeError("生年月日: 存在しない日付です", "birth_date") from None


def _wareki(year: int) -> str:
    return jptime.wareki_year(year)


def _year_options() -> tuple[tuple[int, str], ...]:
    return _years_until(jptime.today_jst().year)


@cache
def _years_until(this_year: int) -> tuple[tuple[int, str], ...]:
    """The birth-year choices with their era names, computed once per year."""
    return tuple((y, f"{y}年（{_wareki(y)}）") for y in range(this_year, 1899, -1))


def _session_over():
    session.clear()
    return _message(
        "もう一度リンクから開いてください",
        "安全のため、一定時間が経過した画面や、別のリンクで開いた画面は使えません。"
        "お手元の QR コードまたはメールのリンクから、もう一度開いてください。",
        401,
    )


def subject_required(open_only: bool = True):
    """Both factors passed, session young enough, request usable; sets ``g.req``."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            req = _bound_request()
            started = session.get("auth_at", 0)
            limit = current_app.config["INTAKE_SESSION_MINUTES"] * 60
            if req is None or not session.get("auth") or time.time() - started > limit:
                return _session_over()
            state = requests.entry_state(req)
            if state != "ok":
                session.clear()
                return _blocked(state)
            if open_only and req.status not in RequestStatus.OPEN_FOR_INPUT:
                return redirect(url_for("form.status"))
            g.req = req
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _draft(create: bool = True):
    return drafts.draft_for(db.session, g.req, _public_key(), create=create)


def _next_url() -> str:
    """The first thing still missing, else the confirmation page."""
    draft = _draft()
    for item in drafts.progress(db.session, g.req, draft):
        if item.excluded or not item.active:
            continue
        if item.number_open and not item.number_done:
            return url_for("form.number", ref=item.subject.ref)
        if item.documents_open and not item.documents_done:
            return url_for("form.documents", ref=item.subject.ref)
    return url_for("form.confirm")


# -- consent ------------------------------------------------------------------------------
@bp.route("/consent", methods=["GET", "POST"])
@subject_required()
def consent():
    errors = []
    if request.method == "POST":
        if request.form.get("agree") == "yes":
            session["consent_at"] = time.time()
            if subjects.is_employee_request(db.session, g.req) and g.req.status == "issued":
                return redirect(url_for("form.household"))
            return redirect(_next_url_committed())
        errors.append("利用目的への同意: 内容をご確認のうえ「同意する」にチェックしてください")
    return _page(
        "consent.html",
        200 if not errors else 422,
        errors=errors,
        purpose=g.req.purpose_text,
        resubmission=g.req.status == RequestStatus.DEFICIENT,
        can_decline=g.req.status == RequestStatus.ISSUED,
    )


def _next_url_committed() -> str:
    url = _next_url()
    db.session.commit()
    return url


def _consented() -> bool:
    return bool(session.get("consent_at"))


# -- the household hub --------------------------------------------------------------------
@bp.get("/household")
@subject_required()
def household():
    if not _consented():
        return redirect(url_for("form.consent"))
    draft = _draft()
    items = drafts.progress(db.session, g.req, draft)
    page = _page(
        "household.html",
        items=items,
        employee=subjects.is_employee_request(db.session, g.req),
        resubmission=g.req.status == RequestStatus.DEFICIENT,
        exclude_reasons=terms.EXCLUDE_REASONS,
        doc_types=terms.DOC_TYPES,
        next_url=_next_url(),
    )
    db.session.commit()  # a draft created just now
    return page


def _subject_or_404(ref: str):
    draft = _draft()
    for item in drafts.progress(db.session, g.req, draft):
        if item.subject.ref == ref:
            return draft, item
    abort(404)


# -- number -------------------------------------------------------------------------------
@bp.route("/p/<ref>/number", methods=["GET", "POST"])
@subject_required()
def number(ref: str):
    if not _consented():
        return redirect(url_for("form.consent"))
    draft, item = _subject_or_404(ref)
    if not item.number_open:
        return redirect(_next_url_committed())
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            drafts.put_number(
                db.session,
                _public_key(),
                g.req,
                draft,
                ref,
                request.form.get("number", ""),
                request.form.get("number_confirm", ""),
            )
        except IntakeError as exc:
            db.session.rollback()
            errors[exc.field or "number"] = str(exc)
        else:
            if item.documents_open and not item.documents_done:
                db.session.commit()
                return redirect(url_for("form.documents", ref=ref))
            return redirect(_next_url_committed())
    db.session.commit()
    # The inputs are always rendered empty: a number is never sent back to the browser.
    return _page(
        "number.html",
        200 if not errors else 422,
        item=item,
        errors=errors,
    )


# -- documents ----------------------------------------------------------------------------
@bp.route("/p/<ref>/documents", methods=["GET", "POST"])
@subject_required()
def documents(ref: str):
    if not _consented():
        return redirect(url_for("form.consent"))
    draft, item = _subject_or_404(ref)
    if not item.documents_open:
        return redirect(_next_url_committed())
    combination = request.values.get("combination", "")
    errors: dict[str, str] = {}
    if combination not in terms.COMBINATIONS:
        db.session.commit()
        return _page("documents_choose.html", item=item, combinations=terms.COMBINATIONS)
    slots = drafts.required_documents(item.subject, combination)
    if request.method == "POST":
        cfg = current_app.config
        chosen: dict[str, uploads.Document] = {}
        for field_name, allowed in slots:
            doc_type = field_name if len(allowed) == 1 else request.form.get(f"{field_name}_type")
            label = _slot_label(field_name)
            if doc_type not in allowed:
                errors[field_name] = f"{label}: 書類の種類を選んでください"
                continue
            upload = request.files.get(field_name)
            data, size = _read_upload(upload, cfg["INTAKE_MAX_FILE_BYTES"])
            try:
                chosen[doc_type] = uploads.process(
                    data,
                    max_bytes=cfg["INTAKE_MAX_FILE_BYTES"],
                    max_pixels=cfg["INTAKE_MAX_IMAGE_PIXELS"],
                    size=size,
                )
            except uploads.UploadRejected as exc:
                errors[field_name] = f"{label}: {exc}"
                if isinstance(exc, uploads.ActiveContentRejected):
                    uploads.audit_refusal(
                        db.session, _actor(), exc, where="collection_request", object_ids=[g.req.id]
                    )
            finally:
                del data
        if not errors:
            try:
                drafts.put_documents(
                    db.session,
                    _public_key(),
                    g.req,
                    draft,
                    ref,
                    combination,
                    chosen,
                    cfg["INTAKE_MAX_SUBMISSION_BYTES"],
                )
            except IntakeError as exc:
                db.session.rollback()
                errors[exc.field or slots[0][0]] = f"{_slot_label(exc.field)}: {exc}"
            else:
                return redirect(_next_url_committed())
    db.session.commit()
    return _page(
        "documents.html",
        200 if not errors else 422,
        item=item,
        combination=combination,
        slots=[(name, allowed, _slot_label(name)) for name, allowed in slots],
        doc_types=terms.DOC_TYPES,
        errors=errors,
        max_file=uploads.limit_text(current_app.config["INTAKE_MAX_FILE_BYTES"]),
    )


def _read_upload(upload, max_bytes: int) -> tuple[bytes, int]:
    """(at most ``max_bytes + 1`` bytes of the file, its real size): a file too big is known
    as such without copying all of it, and its message still states its real size."""
    if not upload:
        return b"", 0
    stream = upload.stream
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    return stream.read(max_bytes + 1), size


def _slot_label(field_name: str | None) -> str:
    return {
        "card_front": "マイナンバーカード（表面）",
        "card_back": "マイナンバーカード（裏面）",
        "number_doc": "番号確認書類",
        "identity_doc": "身元確認書類",
        "combination": "書類の組み合わせ",
    }.get(field_name or "", "確認書類")


# -- dependents -----------------------------------------------------------------------------
@bp.route("/dependents/add", methods=["GET", "POST"])
@subject_required()
def add_dependent():
    if not _consented():
        return redirect(url_for("form.consent"))
    if not subjects.is_employee_request(db.session, g.req) or g.req.status != "issued":
        abort(404)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            birth = _parse_birth_date(request.form)
            ref = drafts.add_dependent(
                db.session,
                _public_key(),
                g.req,
                _draft(),
                name=request.form.get("name", ""),
                kana=request.form.get("kana", ""),
                relation=request.form.get("relation", ""),
                birth_date=birth,
            )
        except IntakeError as exc:
            db.session.rollback()
            errors[exc.field or "name"] = str(exc)
        else:
            db.session.commit()
            _remember_added_name(ref, request.form.get("name", ""))
            return redirect(url_for("form.number", ref=ref))
    # After an error everything typed comes back (never a number or hidden characters).
    values = {
        k: v
        for k in ("name", "kana", "relation")
        if not _unsafe_to_echo(v := request.form.get(k, ""))
    }
    return _page(
        "add_dependent.html",
        200 if not errors else 422,
        errors=errors,
        years=_year_options(),
        values=values,
        chosen=_chosen_date(request.form),
    )


def _remember_added_name(ref: str, name: str) -> None:
    name = " ".join(name.split())[:ADDED_NAME_SHOWN]
    if name and not _unsafe_to_echo(name):
        session[ADDED_NAMES] = {**(session.get(ADDED_NAMES) or {}), ref: name}


@bp.post("/p/<ref>/exclude")
@subject_required()
def exclude(ref: str):
    try:
        drafts.exclude_dependent(
            db.session, _public_key(), g.req, _draft(), ref, request.form.get("reason", "")
        )
    except IntakeError as exc:
        db.session.rollback()
        return _message(
            "対象外にできません", str(exc), 422, link=(url_for("form.household"), "戻る")
        )
    db.session.commit()
    return redirect(url_for("form.household"))


@bp.post("/p/<ref>/include")
@subject_required()
def include(ref: str):
    drafts.include_dependent(db.session, g.req, _draft(), ref)
    db.session.commit()
    return redirect(url_for("form.household"))


@bp.post("/p/<ref>/remove")
@subject_required()
def remove_added(ref: str):
    try:
        drafts.remove_added(db.session, g.req, _draft(), ref)
    except IntakeError as exc:
        db.session.rollback()
        return _message("削除できません", str(exc), 422, link=(url_for("form.household"), "戻る"))
    db.session.commit()
    names = dict(session.get(ADDED_NAMES) or {})
    if names.pop(ref, None) is not None:
        session[ADDED_NAMES] = names
    return redirect(url_for("form.household"))


# -- confirm and submit -----------------------------------------------------------------------
@bp.get("/confirm")
@subject_required()
def confirm():
    if not _consented():
        return redirect(url_for("form.consent"))
    draft = _draft()
    items = drafts.progress(db.session, g.req, draft)
    page = _page(
        "confirm.html",
        items=items,
        doc_types=terms.DOC_TYPES,
        complete=all(i.complete for i in items),
        employee=subjects.is_employee_request(db.session, g.req),
        resubmission=g.req.status == RequestStatus.DEFICIENT,
    )
    db.session.commit()  # a draft created just now
    return page


@bp.post("/submit")
@subject_required()
def submit():
    if not _consented():
        return redirect(url_for("form.consent"))
    consented_at = dt.datetime.fromtimestamp(session["consent_at"], dt.UTC)
    try:
        submission = receive.submit(
            db.session, g.req, _draft(), _public_key(), _actor(), consented_at
        )
    except IntakeError as exc:
        db.session.rollback()
        return _message("まだ提出できません", str(exc), 422, link=(url_for("form.confirm"), "戻る"))
    receipt = submission.receipt_no
    # Hand the receipt mail to RQ now if Redis is up; else it waits in the outbox.
    outbox.after_commit(db.session, [receive.receipt_key(submission.id)])
    session.clear()  # nothing of this visit stays usable in the browser
    session["receipt"] = receipt
    return redirect(url_for("form.done"))


@bp.get("/done")
def done():
    receipt = session.pop("receipt", None)
    if not receipt:
        return redirect(url_for("form.landing"))
    return _page("done.html", receipt=receipt)


# -- status and decline ---------------------------------------------------------------------
@bp.get("/status")
@subject_required(open_only=False)
def status():
    view = receive.subject_status(db.session, g.req)
    db.session.commit()
    return _page("status.html", view=view)


@bp.route("/decline", methods=["GET", "POST"])
@subject_required()
def decline():
    if g.req.status != RequestStatus.ISSUED:
        return redirect(url_for("form.status"))
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            receive.decline(
                db.session,
                g.req,
                _actor(),
                request.form.get("reason", ""),
                request.form.get("note", ""),
            )
        except IntakeError as exc:
            db.session.rollback()
            errors[exc.field or "reason"] = str(exc)
        else:
            return redirect(url_for("form.status"))
    return _page(
        "decline.html",
        200 if not errors else 422,
        errors=errors,
        reasons=terms.DECLINE_REASONS,
    )


@bp.get("/logout")
def logout():
    session.clear()
    return _message("終了しました", "入力画面を終了しました。ブラウザを閉じてください。")


# -- contact --------------------------------------------------------------------------------
@bp.route("/contact", methods=["GET", "POST"])
def contact():
    """The desk's hours (open now, or when it reopens) and the inquiry form (app.operations.desk)."""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in ("name", "contact", "category", "body")}
        try:
            desk.receive_public(db.session, _actor(), **values)
        except desk.DeskError as exc:
            db.session.rollback()
            errors[exc.field or "body"] = str(exc)
            # Never echo back anything that looks like a number or hides characters.
            values = {k: ("" if _unsafe_to_echo(v) else v) for k, v in values.items()}
        else:
            return _message(
                "お問い合わせを受け付けました",
                "担当者から、受付時間内にご連絡します（メールアドレスをご記入の場合は回答を"
                "メールでお送りし、電話番号の場合はお電話します）。",
                link=(url_for("form.landing"), "トップへ"),
            )
    return _page(
        "contact.html",
        200 if not errors else 422,
        errors=errors,
        values=values,
        categories={c: desk.CATEGORIES[c] for c in desk.SUBJECT_CATEGORIES},
        desk_state=desk.state(),
    )


def _unsafe_to_echo(value: str) -> bool:
    """A refused value goes back into the form only when it is plain text: not a number, and
    no NUL, control, bidi or zero-width character (line breaks and tabs are fine)."""
    visible = value.replace("\r", "").replace("\n", "").replace("\t", "")
    return mynumber.contains_number(value) or has_hidden_characters(visible)
