"""保管・廃棄 screens: retention, disposal requests (request → approval → execution), deletion
certificates, and the return archive. Thin: the services in app.lifecycle.retention,
app.lifecycle.disposal, app.lifecycle.certificate and app.lifecycle.returns decide; these read
the forms, call them and render."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.access import policy
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.core import jptime
from app.lifecycle import certificate, disposal, retention, returns
from app.models import (
    DisposalItem,
    DisposalRequest,
    DisposalScope,
    DisposalStatus,
    Person,
    PersonKind,
    ReturnArchive,
    db,
)
from app.platform import outbox
from app.web import context, downloads, forms
from app.web.identity import current_actor

LIST_LIMIT = 500


def _request_or_404(rid: str) -> DisposalRequest:
    return context.row_or_404(DisposalRequest, rid, uuid.UUID)


# -- retention --------------------------------------------------------------------------------
class RetentionView(BaseView):
    """People whose 削除予定日 has come or is near (nothing is deleted from here)."""

    route_base = "/retention"
    class_permission_name = "Retention"
    method_permission_name = {"index": "list"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        session = db.session
        today = jptime.today_jst()
        days = current_app.config.get("RETENTION_UPCOMING_DAYS", 90)
        trail.record(session, current_actor(), "retention.view", object_type="person", commit=True)
        due = (
            session.execute(
                retention.due_query(today)
                .order_by(Person.delete_after, Person.code, Person.dependent_seq)
                .limit(LIST_LIMIT)
            )
            .scalars()
            .all()
        )
        upcoming = (
            session.execute(
                select(Person)
                .where(
                    retention.stored(),
                    Person.delete_after > today,
                    Person.delete_after <= today + dt.timedelta(days=days),
                )
                .order_by(Person.delete_after)
                .limit(LIST_LIMIT)
            )
            .scalars()
            .all()
        )
        return self.render_template(
            "mynumber/retention.html",
            counts=retention.counts(session, today, days),
            due=due,
            upcoming=upcoming,
            days=days,
            limit=LIST_LIMIT,
            rules=retention.load_rules(session).values(),
            kinds=PersonKind.LABELS,
            can_request=policy.allows(current_actor(), "can_request", disposal.VIEW),
        )


# -- disposal ---------------------------------------------------------------------------------
class RequestForm(FlaskForm):
    scope = SelectField(
        "対象範囲",
        choices=[(k, v) for k, v in DisposalScope.LABELS.items()],
        validators=[DataRequired(message="対象範囲を選択してください")],
    )
    codes = TextAreaField(
        "対象者（指定した人物のとき）: 扶養者コード（例 E0001-00、E0001-01）または委員番号を1行に1件",
        validators=[Optional(), Length(max=200_000)],
    )
    material_description = TextAreaField(
        "資料の内容（紙の原本・その他の資料のとき）", validators=[Optional(), Length(max=2000)]
    )
    quantity = StringField("数量（資料のとき）", validators=[Optional(), Length(max=200)])
    reason = TextAreaField(
        "廃棄の理由",
        validators=[
            DataRequired(message="廃棄の理由を入力してください"),
            Length(max=2000, message="廃棄の理由は2000文字以内で入力してください"),
        ],
    )


class DecideForm(FlaskForm):
    """Approve or reject, by the pressed button (``name="decision"``)."""

    decision = forms.decision_field()
    code = StringField("確認コード（TOTP・承認時に必須）", validators=[Optional(), Length(max=6)])
    note = StringField("コメント", validators=[Optional(), Length(max=500)])


class MaterialForm(FlaskForm):
    method = SelectField(
        "廃棄の方法", choices=[(m, m) for m in disposal.MATERIAL_METHODS], validate_choice=True
    )
    performed_on = DateField(
        "実施日", validators=[DataRequired(message="実施日を入力してください")]
    )
    contractor_ref = StringField("処理業者の証明書番号等", validators=[Optional(), Length(max=200)])
    note = StringField("備考", validators=[Optional(), Length(max=500)])


class DisposalView(BaseView):
    """廃棄申請: the request, the client's approval (another ClientStaff user, with a fresh
    TOTP code), the execution, and the record of destroyed materials."""

    route_base = "/disposal"
    class_permission_name = "Disposal"
    method_permission_name = {
        "index": "list",
        "new": "request",
        "show": "show",
        "decide": "approve",
        "execute": "execute",
        "record": "execute",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        rows = (
            db.session.execute(
                select(DisposalRequest).order_by(DisposalRequest.requested_at.desc()).limit(500)
            )
            .scalars()
            .all()
        )
        actor = current_actor()
        return self.render_template(
            "mynumber/disposal_list.html",
            rows=rows,
            can_request=policy.allows(actor, "can_request", disposal.VIEW),
        )

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        form = RequestForm()
        if request.method == "GET" and request.args.get("scope") in DisposalScope.LABELS:
            form.scope.data = request.args["scope"]
        if form.validate_on_submit():
            try:
                ids = []
                if form.scope.data == DisposalScope.PEOPLE:
                    ids = disposal.resolve_codes(db.session, form.codes.data or "")
                req = disposal.request_disposal(
                    db.session,
                    current_actor(),
                    scope=form.scope.data,
                    reason=form.reason.data,
                    person_ids=ids,
                    material_description=form.material_description.data,
                    quantity=form.quantity.data,
                )
            except (disposal.DisposalError, policy.PermissionDenied, AuditUnavailable) as exc:
                db.session.rollback()
                flash(str(exc), "warning")
            else:
                flash(
                    "廃棄を申請しました。発注者担当者（申請者以外）の承認後に実行できます。",
                    "success",
                )
                return redirect(url_for("DisposalView.show", rid=str(req.id)))
        else:
            forms.flash_errors(form)
        return self.render_template("mynumber/disposal_new.html", form=form)

    @expose("/<string:rid>", methods=["GET"])
    @has_access
    def show(self, rid: str):
        req = _request_or_404(rid)
        actor = current_actor()
        trail.record(
            db.session,
            actor,
            "disposal.view",
            object_type="disposal_request",
            object_ids=[req.id],
            commit=True,
        )
        req = _request_or_404(rid)
        people = db.session.execute(
            select(Person)
            .join(DisposalItem, DisposalItem.person_id == Person.id)
            .where(DisposalItem.request_id == req.id)
            .order_by(Person.code, Person.dependent_seq)
            .limit(LIST_LIMIT)
        ).scalars()
        can_download = policy.allows(actor, "can_download", certificate.VIEW)
        material = MaterialForm(formdata=None)
        material.performed_on.data = jptime.today_jst()
        return self.render_template(
            "mynumber/disposal_show.html",
            req=req,
            people=list(people),
            kinds=PersonKind.LABELS,
            limit=LIST_LIMIT,
            decide_form=DecideForm(formdata=None),
            material_form=material,
            exec_form=FlaskForm(formdata=None),
            can_approve=policy.allows(actor, "can_approve", disposal.VIEW)
            and actor.user_id != req.requested_by_id,
            can_execute=policy.allows(actor, "can_execute", disposal.VIEW),
            can_download=can_download,
            statuses=DisposalStatus,
        )

    @expose("/<string:rid>/decide", methods=["POST"])
    @has_access
    def decide(self, rid: str):
        req = _request_or_404(rid)
        form = forms.posted(DecideForm)
        decision = form.decision.data
        try:
            disposal.decide(
                db.session,
                context.vault(),
                current_actor(),
                req.id,
                decision == "approve",
                form.code.data,
                form.note.data,
            )
        except (disposal.DisposalError, policy.PermissionDenied, AuditUnavailable) as exc:
            flash(str(exc), "warning")
        else:
            flash(
                "承認しました。実行できる状態になりました。"
                if decision == "approve"
                else "却下しました。",
                "success",
            )
        return redirect(url_for("DisposalView.show", rid=rid))

    @expose("/<string:rid>/execute", methods=["POST"])
    @has_access
    def execute(self, rid: str):
        req = _request_or_404(rid)
        forms.posted(FlaskForm)
        try:
            result = disposal.execute(
                db.session,
                context.vault(),
                current_actor(),
                req.id,
                current_app.config["DISPOSAL_JOURNAL_FILE"],
                compact=False,
            )
        except (disposal.DisposalError, policy.PermissionDenied, AuditUnavailable) as exc:
            flash(str(exc), "warning")
            return redirect(url_for("DisposalView.show", rid=rid))
        if result.already_done:
            flash("この廃棄は実行済みです。", "info")
        else:
            flash(
                f"{result.request.person_count} 名を廃棄しました（証明書番号 "
                f"{result.request.certificate_no}）。",
                "success",
            )
            # The database files are tidied in the background: it may wait for older
            # transactions to end, which a request should not. Through the outbox,
            # so a Redis outage only delays it.
            outbox.add(db.session, disposal.FINISH_JOB, str(result.request.id))
            db.session.commit()
            outbox.after_commit(
                db.session, [outbox.key_for(disposal.FINISH_JOB, str(result.request.id))]
            )
        return redirect(url_for("DisposalView.show", rid=rid))

    @expose("/<string:rid>/record", methods=["POST"])
    @has_access
    def record(self, rid: str):
        req = _request_or_404(rid)
        form = MaterialForm()
        if form.validate_on_submit():
            try:
                disposal.record_material_disposal(
                    db.session,
                    current_actor(),
                    req.id,
                    method=form.method.data,
                    performed_on=form.performed_on.data,
                    contractor_ref=form.contractor_ref.data,
                    note=form.note.data,
                )
            except (disposal.DisposalError, policy.PermissionDenied, AuditUnavailable) as exc:
                flash(str(exc), "warning")
            else:
                flash("資料の廃棄を記録しました。削除証明書を発行できます。", "success")
        else:
            forms.flash_errors(form)
        return redirect(url_for("DisposalView.show", rid=rid))


# -- certificates -------------------------------------------------------------------------------
class CertificateView(BaseView):
    """削除証明書 of every executed disposal (ids only), for ClientStaff and Auditors."""

    route_base = "/certificates"
    class_permission_name = "DeletionCertificate"
    method_permission_name = {"index": "list", "download": "download"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        rows = (
            db.session.execute(
                select(DisposalRequest)
                .where(DisposalRequest.status == DisposalStatus.EXECUTED)
                .order_by(DisposalRequest.executed_at.desc())
            )
            .scalars()
            .all()
        )
        return self.render_template("mynumber/certificates.html", rows=rows)

    @expose("/<string:rid>.<string:fmt>", methods=["GET"])
    @has_access
    def download(self, rid: str, fmt: str):
        req = _request_or_404(rid)
        try:
            name, data, mime = certificate.download(
                db.session,
                context.vault(),
                current_actor(),
                req.id,
                fmt,
                client=current_app.config["CLIENT_NAME"],
                operator=current_app.config["OPERATOR_NAME"],
                responsible=current_app.config.get("OPERATOR_RESPONSIBLE", ""),
            )
        except (certificate.CertificateError, policy.PermissionDenied, AuditUnavailable) as exc:
            flash(str(exc), "warning")
            return redirect(url_for("CertificateView.index"))
        return downloads.attachment(data, name, mime)


# -- return archive -------------------------------------------------------------------------------
class ReturnForm(FlaskForm):
    purpose = TextAreaField(
        "利用目的（返却の目的）",
        validators=[
            DataRequired(message="利用目的を入力してください"),
            Length(max=500, message="利用目的は500文字以内で入力してください"),
        ],
    )
    public_key = TextAreaField("発注者の公開鍵（.pub の内容を貼り付け）", validators=[Optional()])
    public_key_file = FileField("または公開鍵ファイル")
    code = StringField(
        "確認コード（TOTP）",
        validators=[DataRequired(message="確認コード（TOTP）を入力してください"), Length(max=6)],
    )


class ReturnArchiveView(BaseView):
    """返却データ: everything stored, sealed to the client's public key (spec 5.3-4)."""

    route_base = "/return"
    class_permission_name = "ReturnArchive"
    method_permission_name = {"index": "list", "create": "export", "download": "download"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        rows = (
            db.session.execute(select(ReturnArchive).order_by(ReturnArchive.requested_at.desc()))
            .scalars()
            .all()
        )
        return self.render_template(
            "mynumber/return_archive.html", rows=rows, form=ReturnForm(formdata=None)
        )

    @expose("/create", methods=["POST"])
    @has_access
    def create(self):
        form = ReturnForm()
        if not form.validate_on_submit():
            forms.flash_errors(form)
            return redirect(url_for("ReturnArchiveView.index"))
        text = form.public_key.data or ""
        upload = form.public_key_file.data
        if upload and getattr(upload, "filename", ""):
            text = upload.read(64 * 1024).decode("utf-8", "replace")
        try:
            row = returns.request_archive(
                db.session,
                context.vault(),
                current_actor(),
                form.purpose.data,
                text,
                form.code.data,
            )
        except (returns.ReturnError, policy.PermissionDenied, AuditUnavailable) as exc:
            flash(str(exc), "warning")
            return redirect(url_for("ReturnArchiveView.index"))
        outbox.add(db.session, returns.BUILD_JOB, str(row.id))
        db.session.commit()
        report = outbox.after_commit(db.session, [outbox.key_for(returns.BUILD_JOB, str(row.id))])
        if report.errors:
            flash(
                f"返却データの作成を受け付けましたが、{report.errors[0]}。"
                "一覧の状態を確認してください。",
                "warning",
            )
        else:
            flash(
                "返却データの作成を受け付けました。作成済みになるとダウンロードできます。",
                "success",
            )
        return redirect(url_for("ReturnArchiveView.index"))

    @expose("/<string:aid>/download", methods=["GET"])
    @has_access
    def download(self, aid: str):
        try:
            row = db.session.get(ReturnArchive, uuid.UUID(aid))
        except ValueError:
            abort(404)
        if row is None or row.status != "ready" or not row.file_name:
            abort(404)
        trail.record(
            db.session,
            current_actor(),
            "return.download",
            object_type="return_archive",
            object_ids=[row.id],
            details={"sha256": row.sha256},
            commit=True,
        )
        row = db.session.get(ReturnArchive, uuid.UUID(aid))
        return send_file(
            row.file_name,
            mimetype="application/octet-stream",
            as_attachment=True,
            download_name=f"return-{row.id.hex[:8]}{returns.SUFFIX}",
        )
