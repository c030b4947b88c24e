"""確認キュー: the received submissions, each claimed by one operator, opened (audited) with all
its rounds merged, and accepted (the numbers registered), marked deficient or refused; with
four eyes, a second operator approves what the first checked.

The case page flags a number stored for someone else as soon as it opens, shows the
documents as zoomable images (a PDF as its pages), and a refused accept stays on the case:
the page is rendered again from the opening the accept itself made (and audited), with the
operator's ticks kept, instead of sending them to the queue to open and audit it again."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from app.access import policy
from app.collection import mailings, terms, verification
from app.core import mynumber
from app.models import Channel, CollectionRequest, VerificationCase, db
from app.platform import outbox
from app.web import context, docimages, forms
from app.web.identity import current_actor
from app.web.views.collection.errors import USER_ERRORS, fail


class OpenForm(FlaskForm):
    """Opening a case: the purpose goes into the audit event of the unseal."""

    purpose = StringField(default="")


class NoteForm(FlaskForm):
    """Accepting a case or marking it deficient: the note. The checklist and the deficiency
    codes come per subject of the case (``_checklist``, ``forms.ticked``)."""

    note = TextAreaField()


class RefuseForm(FlaskForm):
    reason = StringField(default="")
    note = TextAreaField()


class VerificationView(BaseView):
    """確認キュー: claim, open (audited), accept / 不備 / 不受理, four-eyes approval."""

    route_base = "/verification"
    class_permission_name = verification.VIEW
    method_permission_name = {
        "index": "list",
        "claim": "claim",
        "approve": "claim",
        "release": "claim",
        "open": "decide",
        "accept": "decide",
        "deficient": "decide",
        "refuse": "decide",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        try:
            queue = verification.queue(db.session, current_actor())
        except policy.PermissionDenied:
            abort(403)
        return self.render_template(
            "mynumber/verification_queue.html", queue=queue, form=FlaskForm()
        )

    @expose("/claim/<string:rid>", methods=["POST"])
    @has_access
    def claim(self, rid: str):
        forms.posted(FlaskForm)
        req = context.row_or_404(CollectionRequest, rid, uuid.UUID)
        try:
            case = verification.claim(db.session, current_actor(), req.id)
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("VerificationView.index"))
        flash(f"案件 {case.id} を担当しました。「開封して確認する」で内容を表示します。", "success")
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/approve", methods=["POST"])
    @has_access
    def approve(self, case_id: str):
        forms.posted(FlaskForm)
        case = context.row_or_404(VerificationCase, case_id)
        try:
            verification.claim_approval(db.session, current_actor(), case.id)
            flash("承認作業を担当しました。開封して確認してください。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/release", methods=["POST"])
    @has_access
    def release(self, case_id: str):
        forms.posted(FlaskForm)
        case = context.row_or_404(VerificationCase, case_id)
        try:
            verification.release(db.session, current_actor(), case.id)
            flash("担当を外しました。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/open", methods=["POST"])
    @has_access
    def open(self, case_id: str):
        form = forms.posted(OpenForm)
        case = context.row_or_404(VerificationCase, case_id)
        try:
            view = verification.open_case(
                db.session,
                context.keyring(),
                current_actor(),
                case.id,
                form.purpose.data,
                vault=context.vault(),
            )
        except (*USER_ERRORS, LookupError) as exc:
            fail(exc)
            return redirect(url_for("VerificationView.index"))
        return self._case_page(view)

    def _case_page(self, view, ticked: dict | None = None, note: str | None = None):
        """The opened case; after a refused accept, with what the operator had ticked."""
        return self.render_template(
            "mynumber/verification_case.html",
            view=view,
            subjects=[(s, docimages.documents(s)) for s in view.subjects],
            grouped=lambda n: mynumber.format_grouped(n) if n else "（提出されていません）",
            combinations=terms.COMBINATIONS,
            check_items=verification.CHECK_ITEMS,
            codes=terms.DEFICIENCY_CODES,
            refusals=verification.REFUSAL_REASONS,
            history=view.request.history,
            form=FlaskForm(),
            ticked=ticked or {},
            note=note,
        )

    @expose("/case/<string:case_id>/accept", methods=["POST"])
    @has_access
    def accept(self, case_id: str):
        form = forms.posted(NoteForm)
        case = context.row_or_404(VerificationCase, case_id)
        checklist = _checklist()
        try:
            result = verification.accept(
                db.session,
                context.vault(),
                context.keyring(),
                current_actor(),
                case.id,
                checklist,
                form.note.data,
            )
        except verification.AcceptRefused as exc:
            fail(exc)  # nothing was registered; the view stays as opened for the attempt
            return self._case_page(exc.view, ticked=checklist, note=form.note.data)
        except (*USER_ERRORS, LookupError) as exc:
            fail(exc)
            return redirect(url_for("VerificationView.index"))
        if result.status == "accepted":
            flash(
                f"受理しました: {result.registered} 人の個人番号をマイナンバーデータベースに登録し、"
                "確認書類の画像を削除しました。",
                "success",
            )
        else:
            flash(
                "一次確認を記録しました。別の担当者の承認を待ちます（まだ登録されていません）。",
                "info",
            )
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/deficient", methods=["POST"])
    @has_access
    def deficient(self, case_id: str):
        form = forms.posted(NoteForm)
        case = context.row_or_404(VerificationCase, case_id)
        items = forms.ticked("def-")
        try:
            notice = verification.deficient(
                db.session, current_actor(), case.id, items, form.note.data
            )
        except (*USER_ERRORS, LookupError) as exc:
            fail(exc)
            return redirect(url_for("VerificationView.index"))
        if notice is not None and notice.channel == Channel.EMAIL:
            outbox.after_commit(db.session, mailings.outbox_keys([notice.id]))
            flash("不備を登録し、メールで通知しました。", "success")
        elif notice is not None:
            flash("不備を登録しました。お知らせの文書は次の印刷バッチで印刷します。", "success")
        else:
            flash("不備を登録しました（提出者のリンクで表示されます）。", "success")
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/refuse", methods=["POST"])
    @has_access
    def refuse(self, case_id: str):
        form = forms.posted(RefuseForm)
        case = context.row_or_404(VerificationCase, case_id)
        try:
            verification.refuse(
                db.session, current_actor(), case.id, form.reason.data, form.note.data
            )
            flash("不受理として記録し、提出内容を削除しました。", "success")
        except (*USER_ERRORS, LookupError) as exc:
            fail(exc)
        return redirect(url_for("VerificationView.index"))


def _checklist() -> dict[str, dict]:
    """The operator's checklist, one set of fields per subject of the case (``ref``): the
    documents' combination, the number checked, the identity checked.

    The fields are named after the subjects shown (``combination-<ref>``…), which no declared
    form can name; they are read from the request here, and checked by the service."""
    return {
        ref: {
            "combination": request.form.get(f"combination-{ref}"),
            "number": request.form.get(f"number-{ref}") == "1",
            "identity": request.form.get(f"identity-{ref}") == "1",
        }
        for ref in request.form.getlist("ref")
    }
