"""情報管理体制 screens: roster downloads, the 情報管理体制図 (edit, approve, download) and the
取扱状況 register. Thin: every rule is in ``app.operations.governance``."""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from app.access import policy
from app.audit.trail import AuditUnavailable
from app.models import db
from app.operations import governance
from app.platform.pdf import PdfUnavailable
from app.web import downloads, forms
from app.web.identity import current_actor

_FAILURES = (governance.GovernanceError, policy.PermissionDenied, AuditUnavailable, PdfUnavailable)


class ChartForm(FlaskForm):
    """A proposed 情報管理体制図 (``governance.ChartText``)."""

    responsible = StringField(default="")
    handlers = TextAreaField(default="")
    contacts = TextAreaField(default="")
    note = TextAreaField(default="")


class DecideForm(FlaskForm):
    """Approve or reject a proposed chart, by the pressed button."""

    decision = forms.decision_field()


def _export(function, fmt: str, back: str):
    try:
        name, data, mime = function(
            db.session,
            current_actor(),
            fmt,
            request.args.get("encoding", "utf-8-sig"),
            client=current_app.config.get("CLIENT_NAME", ""),
        )
    except _FAILURES as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for(back))
    return downloads.attachment(data, name, mime)


class RosterExportView(BaseView):
    """情報取扱者名簿 as PDF / CSV (ClientStaff, Auditor, SystemAdmin); no menu of its own."""

    route_base = "/roster-export"
    class_permission_name = governance.ROSTER_VIEW
    method_permission_name = {"download": "download"}

    @expose("/roster.<string:fmt>", methods=["GET"])
    @has_access
    def download(self, fmt: str):
        return _export(governance.roster_export, fmt, "HandlingChartView.index")


class HandlingChartView(BaseView):
    """情報管理体制図: the current version, proposals, approval, history, downloads."""

    route_base = "/handling-chart"
    class_permission_name = governance.CHART_VIEW
    method_permission_name = {
        "index": "list",
        "propose": "propose",
        "decide": "approve",
        "download": "download",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        actor = current_actor()
        current = governance.current_chart(db.session)
        return self.render_template(
            "mynumber/handling_chart.html",
            current=current,
            rows=governance.chart_lines(current) if current else [],
            history=governance.chart_history(db.session),
            form=FlaskForm(),
            fields=governance.CHART_FIELDS,
            can_propose=policy.allows(actor, "can_propose", governance.CHART_VIEW),
            can_approve=policy.allows(actor, "can_approve", governance.CHART_VIEW),
            can_download=policy.allows(actor, "can_download", governance.CHART_VIEW),
            can_roster=policy.allows(actor, "can_download", governance.ROSTER_VIEW),
            me=actor.user_id,
        )

    @expose("/propose", methods=["POST"])
    @has_access
    def propose(self):
        form = forms.posted(ChartForm)
        text = governance.ChartText(
            responsible=form.responsible.data,
            handlers=form.handlers.data,
            contacts=form.contacts.data,
            note=form.note.data,
        )
        try:
            governance.propose_chart(db.session, current_actor(), text)
        except _FAILURES as exc:
            db.session.rollback()
            flash(str(exc), "warning")
        else:
            flash("体制図の変更を申請しました。発注者担当者の承認後に反映されます。", "success")
        return redirect(url_for("HandlingChartView.index"))

    @expose("/<int:chart_id>/decide", methods=["POST"])
    @has_access
    def decide(self, chart_id: int):
        decision = forms.posted(DecideForm).decision.data
        try:
            governance.decide_chart(db.session, current_actor(), chart_id, decision == "approve")
        except _FAILURES as exc:
            db.session.rollback()
            flash(str(exc), "warning")
        else:
            flash("承認しました。" if decision == "approve" else "却下しました。", "success")
        return redirect(url_for("HandlingChartView.index"))

    @expose("/chart.<string:fmt>", methods=["GET"])
    @has_access
    def download(self, fmt: str):
        return _export(governance.chart_export, fmt, "HandlingChartView.index")


class RegisterView(BaseView):
    """取扱状況: every data set held, who may reach it, counts and deletion status."""

    route_base = "/register"
    class_permission_name = governance.REGISTER_VIEW
    method_permission_name = {"index": "list", "download": "download"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        try:
            rows = governance.register(db.session, current_actor())
        except policy.PermissionDenied as exc:
            flash(str(exc), "warning")
            return redirect("/")
        return self.render_template(
            "mynumber/register.html", rows=rows, headers=governance.REGISTER_HEADERS
        )

    @expose("/register.<string:fmt>", methods=["GET"])
    @has_access
    def download(self, fmt: str):
        return _export(governance.register_export, fmt, "RegisterView.index")
