"""Report screens: 利用実績報告書 (months, due dates, delivery status, downloads, notes,
re-send), 想定人数 (the planned volumes), and the dashboard. Thin: the decisions are in
``app.operations.reports``."""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField

from app.access import policy
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.collection import dashboard
from app.core import jptime
from app.models import BillingCategory, MonthlyReport, PlannedVolume, db, utcnow
from app.operations.reports import delivery, monthly
from app.web import downloads
from app.web.identity import current_actor

PLAN_CATEGORIES = {
    **{c: BillingCategory.label(c) for c in BillingCategory.ALL},
    "stored_employee": "保管人数 役職員(親族含)",
    "stored_external": "保管人数 外部委員等",
}


class NotesForm(FlaskForm):
    notes = TextAreaField("その他（特記事項）")
    reason = StringField("訂正理由")


def _months(session) -> list[MonthlyReport]:
    """Every month from the first with any activity to this one, newest first: a month the
    job missed shows as 未送信 rather than being absent.

    Months without a row are shown, not stored: looking at the page writes nothing; the row
    is made when the month's report or notes are first saved (``delivery.ensure``)."""
    today = jptime.today_jst()
    rows = {r.month: r for r in session.execute(select(MonthlyReport)).scalars()}
    this = f"{today.year:04d}-{today.month:02d}"
    first = min([m for m in (delivery.first_month(session), monthly.previous_month(today)) if m])
    for month in delivery.month_range(first, this):
        if month not in rows:
            rows[month] = MonthlyReport(month=month, due_on=monthly.due_date(month))
    return sorted(rows.values(), key=lambda row: row.month, reverse=True)


def _settings() -> dict:
    cfg = current_app.config
    return {"client": cfg["CLIENT_NAME"], "operator": cfg["OPERATOR_NAME"]}


class ReportView(BaseView):
    """利用実績報告書: one row per month."""

    route_base = "/reports"
    class_permission_name = "Reports"
    method_permission_name = {
        "index": "list",
        "download": "download",
        "notes": "notes",
        "generate": "generate",
        "resend": "send",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        actor = current_actor()
        return self.render_template(
            "mynumber/reports.html",
            rows=_months(db.session),
            recipients=current_app.config.get("REPORT_RECIPIENTS") or [],
            can=lambda perm: policy.allows(actor, perm, delivery.VIEW),
            form=NotesForm(),
            current=jptime.today_jst().strftime("%Y-%m"),
            corrections=delivery.corrections_due(db.session),
            sent=delivery.is_sent,
        )

    @expose("/<string:month>.<string:fmt>", methods=["GET"])
    @has_access
    def download(self, month: str, fmt: str):
        encoding = "cp932" if request.args.get("encoding") == "cp932" else "utf-8-sig"
        version = request.args.get("version", type=int)
        try:
            name, data, mime = delivery.download(
                db.session, current_actor(), month, fmt, encoding, version=version
            )
        except (monthly.ReportError, policy.PermissionDenied, AuditUnavailable) as exc:
            flash(str(exc), "warning")
            return redirect(url_for("ReportView.index"))
        return downloads.attachment(data, name, mime)

    @expose("/<string:month>/notes", methods=["POST"])
    @has_access
    def notes(self, month: str):
        form = NotesForm()
        if form.validate_on_submit():
            try:
                delivery.save_notes(db.session, current_actor(), month, form.notes.data or "")
                flash(f"{monthly.month_label(month)}の特記事項を保存しました", "success")
            except (monthly.ReportError, policy.PermissionDenied) as exc:
                db.session.rollback()
                flash(str(exc), "warning")
        return redirect(url_for("ReportView.index"))

    @expose("/<string:month>/generate", methods=["POST"])
    @has_access
    def generate(self, month: str):
        form = NotesForm()
        if form.validate_on_submit():
            try:
                row = delivery.generate(
                    db.session,
                    current_actor(),
                    month,
                    correction_reason=form.reason.data,
                    **_settings(),
                )
                flash(
                    f"{monthly.month_label(month)}の報告書（第{row.version}版）を作成しました",
                    "success",
                )
                problem = delivery.figures(row).get("invoice_problem")
                if problem:
                    flash(problem, "warning")
            except (monthly.ReportError, policy.PermissionDenied) as exc:
                db.session.rollback()
                flash(str(exc), "warning")
        return redirect(url_for("ReportView.index"))

    @expose("/<string:month>/resend", methods=["POST"])
    @has_access
    def resend(self, month: str):
        if NotesForm().validate_on_submit():
            try:
                sent = delivery.send(
                    db.session,
                    current_actor(),
                    month,
                    recipients=list(current_app.config.get("REPORT_RECIPIENTS") or []),
                    **_settings(),
                )
                if sent.status == "sent":
                    flash(f"{monthly.month_label(month)}の報告書を送信しました", "success")
                else:
                    flash(f"送信できませんでした: {sent.error}", "warning")
            except (monthly.ReportError, policy.PermissionDenied) as exc:
                db.session.rollback()
                flash(str(exc), "warning")
        return redirect(url_for("ReportView.index"))


class PlannedVolumeView(ModelView):
    """想定人数 (spec 別添): seeded with the spec's figures, kept up to date by the operator."""

    datamodel = SQLAInterface(PlannedVolume)
    class_permission_name = "PlannedVolume"
    method_permission_name = {"list": "list", "show": "list", "add": "add", "edit": "edit"}
    base_permissions = ["can_list", "can_add", "can_edit"]
    base_order = ("fiscal_year", "desc")
    list_title = "想定人数（年度別）"
    add_title = "想定人数の登録"
    edit_title = "想定人数の変更"
    list_columns = ["fiscal_year", "period_label", "category", "households", "people", "updated_by"]
    add_columns = ["fiscal_year", "period_label", "category", "households", "people"]
    edit_columns = ["period_label", "households", "people"]
    label_columns = {
        "fiscal_year": "年度",
        "period_label": "対象期間",
        "category": "区分",
        "households": "世帯数（役職員数）",
        "people": "人数（親族含）",
        "updated_by": "更新者",
    }
    formatters_columns = {"category": lambda c: PLAN_CATEGORIES.get(c, c)}
    add_form_extra_fields = {"category": SelectField("区分", choices=list(PLAN_CATEGORIES.items()))}

    def _stamp(self, item: PlannedVolume) -> None:
        for field, label in (("households", "世帯数"), ("people", "人数")):
            value = getattr(item, field)
            if value is not None and value < 0:
                raise monthly.ReportError(f"{label}: 0以上の整数で入力してください")
        item.updated_by = current_actor().name
        item.updated_at = utcnow()

    def pre_add(self, item: PlannedVolume) -> None:
        self._stamp(item)

    def pre_update(self, item: PlannedVolume) -> None:
        self._stamp(item)

    def _audit(self, item: PlannedVolume) -> None:
        trail.record(
            db.session,
            current_actor(),
            "report.plan_set",
            object_type="planned_volume",
            object_ids=[item.id],
            details={
                "fiscal_year": item.fiscal_year,
                "category": item.category,
                "households": item.households,
                "people": item.people,
            },
            commit=True,
        )

    def post_add(self, item: PlannedVolume) -> None:
        self._audit(item)

    def post_update(self, item: PlannedVolume) -> None:
        self._audit(item)


class DashboardView(BaseView):
    """ダッシュボード: the landing page of the client's staff and the operators."""

    route_base = "/dashboard"
    class_permission_name = "Dashboard"
    method_permission_name = {"index": "index"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        return self.render_template("mynumber/dashboard.html", d=dashboard.figures(db.session))
