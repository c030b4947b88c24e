"""郵送受付: a paper submission from envelope to the verification queue — the envelope and its
return postage, the scans (cleaned and sealed), blind double keying of each number by two
operators, dependents added on the form, and the documents sent back."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField

from app.collection import campaigns, paper, subjects, terms
from app.core import jptime
from app.models import CollectionRequest, PaperIntake, db
from app.web import context, forms
from app.web.identity import current_actor
from app.web.views.collection.errors import USER_ERRORS, fail, whole_number


class ReceiveForm(FlaskForm):
    request_code = StringField(default="")
    received_on = StringField(default="")
    tracking_number = StringField()
    carrier = StringField(default="")
    method = StringField(default="")
    cost_yen = StringField()


class ScanForm(FlaskForm):
    ref = StringField(default="")
    doc_type = StringField(default="")
    file = FileField()


class KeyForm(FlaskForm):
    """One keying of one number: compared with the other operator's, never shown again."""

    ref = StringField(default="")
    number = StringField(default="")


class DependentForm(FlaskForm):
    name = StringField(default="")
    kana = StringField()
    relation = StringField(default="")
    birth_date = StringField(default="")


class ExcludeForm(FlaskForm):
    ref = StringField(default="")
    reason = StringField(default="")


class ReturnDocumentsForm(FlaskForm):
    sent_on = StringField(default="")
    carrier = StringField(default="")
    method = StringField(default="")
    cost_yen = StringField()
    tracking_number = StringField()


class PaperView(BaseView):
    """郵送受付: envelopes, scans, blind double keying, 確認待ちへの登録, returning documents."""

    route_base = "/paper"
    class_permission_name = paper.VIEW
    method_permission_name = {
        "index": "list",
        "receive": "add",
        "show": "list",
        "scan": "scan",
        "remove_scan": "scan",
        "key": "key",
        "dependent": "key",
        "exclude": "key",
        "finish": "finish",
        "return_docs": "return",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        return self.render_template(
            "mynumber/paper_list.html",
            open_items=paper.open_intakes(db.session),
            recent=paper.recent_intakes(db.session),
            form=FlaskForm(),
            today=jptime.today_jst().isoformat(),
            carrier=current_app.config["KIT_CARRIER"],
            method=current_app.config["KIT_RETURN_METHOD"],
        )

    @expose("/receive", methods=["POST"])
    @has_access
    def receive(self):
        form = forms.posted(ReceiveForm)
        try:
            item = paper.receive_envelope(
                db.session,
                current_actor(),
                request_code=form.request_code.data,
                received_on=form.received_on.data,
                tracking=form.tracking_number.data,
                carrier=form.carrier.data,
                method=form.method.data,
                cost_yen=whole_number(form.cost_yen.data, "料金"),
            )
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("PaperView.index"))
        flash("封筒を受け付けました。申請用紙と確認書類をスキャンして登録してください。", "success")
        return redirect(url_for("PaperView.show", pid=item.id))

    @expose("/<string:pid>", methods=["GET"])
    @has_access
    def show(self, pid: str):
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        actor = current_actor()
        req = db.session.get(CollectionRequest, item.request_id)
        return self.render_template(
            "mynumber/paper_show.html",
            item=item,
            req=req,
            states=paper.state(db.session, item, actor),
            scans=[p for p in item.parts if p.part == "document"],
            doc_types=terms.DOC_TYPES,
            exclude_reasons=terms.EXCLUDE_REASONS,
            employee=subjects.is_employee_request(db.session, req),
            form=FlaskForm(),
            today=jptime.today_jst().isoformat(),
            fmt=campaigns.format_date,
        )

    def _back(self, item: PaperIntake):
        return redirect(url_for("PaperView.show", pid=item.id))

    @expose("/<string:pid>/scan", methods=["POST"])
    @has_access
    def scan(self, pid: str):
        form = forms.posted(ScanForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            paper.add_scan(
                db.session,
                context.keyring(),
                current_actor(),
                item,
                form.ref.data,
                form.doc_type.data,
                form.file.data.read() if form.file.data else b"",
            )
            flash("スキャン画像を登録しました（暗号化して保存）。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return self._back(item)

    @expose("/<string:pid>/scan/<string:part_id>/remove", methods=["POST"])
    @has_access
    def remove_scan(self, pid: str, part_id: str):
        forms.posted(FlaskForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            part_uuid = uuid.UUID(part_id)
        except ValueError:
            abort(404)
        try:
            paper.remove_scan(db.session, current_actor(), item, part_uuid)
            flash("スキャン画像を削除しました。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return self._back(item)

    @expose("/<string:pid>/key", methods=["POST"])
    @has_access
    def key(self, pid: str):
        form = forms.posted(KeyForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            result = paper.key_number(
                db.session,
                context.keyring(),
                current_actor(),
                item,
                form.ref.data,
                form.number.data,
            )
            flash(result.message, "warning" if result.mismatch else "success")
        except USER_ERRORS as exc:
            fail(exc)
        return self._back(item)

    @expose("/<string:pid>/dependent", methods=["POST"])
    @has_access
    def dependent(self, pid: str):
        form = forms.posted(DependentForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            paper.add_dependent(
                db.session,
                context.keyring(),
                current_actor(),
                item,
                name=form.name.data,
                kana=form.kana.data,
                relation=form.relation.data,
                birth_date=form.birth_date.data,
            )
            flash("追加の扶養親族を登録しました。番号を二重入力してください。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return self._back(item)

    @expose("/<string:pid>/exclude", methods=["POST"])
    @has_access
    def exclude(self, pid: str):
        form = forms.posted(ExcludeForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            paper.exclude(
                db.session,
                context.keyring(),
                current_actor(),
                item,
                form.ref.data,
                form.reason.data,
            )
            flash("対象外として登録しました。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return self._back(item)

    @expose("/<string:pid>/finish", methods=["POST"])
    @has_access
    def finish(self, pid: str):
        forms.posted(FlaskForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            submission = paper.finish(db.session, context.keyring(), current_actor(), item)
        except USER_ERRORS as exc:
            fail(exc)
            return self._back(item)
        flash(f"確認待ちに登録しました（受付番号 {submission.receipt_no}）。", "success")
        return redirect(url_for("PaperView.index"))

    @expose("/<string:pid>/return", methods=["POST"])
    @has_access
    def return_docs(self, pid: str):
        form = forms.posted(ReturnDocumentsForm)
        item = context.row_or_404(PaperIntake, pid, uuid.UUID)
        try:
            paper.return_documents(
                db.session,
                current_actor(),
                item,
                sent_on=form.sent_on.data,
                carrier=form.carrier.data,
                method=form.method.data,
                cost_yen=whole_number(form.cost_yen.data, "料金"),
                tracking=form.tracking_number.data,
            )
            flash("書類の返送を記録しました（郵送費を記録）。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return self._back(item)
