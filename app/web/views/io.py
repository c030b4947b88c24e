"""CSV screens: import (preview, then confirm), export download, bulk 照合, layout editor.

Thin: the services decide (``app.io.imports``, ``app.io.exports``, ``app.io.matching``,
``app.io.layouts``); these views parse the forms, keep the two-step state in sealed tickets
(``app.io.tickets``), and render. A number never appears in a URL or a page here, and a
download is built in memory, sent once, and never stored.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

from flask import flash, g, redirect, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import Form, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields import FieldList, FormField
from wtforms.validators import DataRequired, Length, Optional

from app.access import policy
from app.audit.trail import AuditUnavailable
from app.core import jptime
from app.io import exports, imports, layouts, matching, tickets
from app.models import db
from app.platform.csvio import ENCODINGS_IN, CsvWriteError
from app.vault.envelopes import VaultError
from app.web import context, forms
from app.web.identity import current_actor

SHOWN_PROBLEMS = 1000
LAYOUT_SLOTS = 15


def _layout_choices() -> list[tuple[str, str]]:
    return [
        (str(item.id), f"{item.name}（{layouts.KINDS[item.kind]}）")
        for item in layouts.list_layouts(db.session)
    ]


class ImportForm(FlaskForm):
    file = FileField("CSV ファイル", validators=[FileRequired("ファイルを選択してください")])
    layout = SelectField("様式", validators=[DataRequired("様式を選択してください")])
    encoding = SelectField("文字コード", choices=list(ENCODINGS_IN.items()), default="auto")


class TicketForm(FlaskForm):
    ticket = HiddenField(validators=[DataRequired()])


class ExportForm(FlaskForm):
    layout = SelectField("様式", validators=[DataRequired("様式を選択してください")])
    encoding = SelectField(
        "文字コード",
        choices=[("", "様式の設定どおり"), *layouts.ENCODINGS.items()],
        default="",
    )
    purpose = TextAreaField(
        "利用目的",
        validators=[
            DataRequired("利用目的を入力してください"),
            Length(max=500, message="利用目的は500文字以内で入力してください"),
        ],
    )


class MatchForm(ExportForm):
    file = FileField(
        "照合キーの CSV（見出し: 職員番号,生年月日 または 氏名,生年月日）",
        validators=[FileRequired("ファイルを選択してください")],
    )
    key_encoding = SelectField(
        "キーの文字コード", choices=list(ENCODINGS_IN.items()), default="auto"
    )


class ImportView(BaseView):
    """CSV 取込: upload, see the same report as the CLI, then confirm (ClientStaff)."""

    route_base = "/io/import"
    class_permission_name = "Numbers"
    method_permission_name = {"index": "import", "confirm": "import"}
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        form = ImportForm()
        form.layout.choices = _layout_choices()
        report = None
        ticket = None
        if form.validate_on_submit():
            data = form.file.data.read()
            try:
                layout = layouts.get_by_id(db.session, int(form.layout.data))
                report = imports.import_csv(
                    db.session,
                    context.vault(),
                    current_actor(),
                    io.BytesIO(data),
                    layout,
                    encoding=form.encoding.data,
                    dry_run=True,
                    filename=form.file.data.filename,
                )
                if report.ok and report.rows:
                    payload = form.encoding.data.encode("ascii") + b"\n" + data
                    ticket = tickets.create(
                        db.session, context.vault(), g.user.id, "import", layout.id, payload
                    )
            except (policy.PermissionDenied, LookupError, ValueError, AuditUnavailable) as exc:
                flash(str(exc), "danger")
            finally:
                data = None
        elif form.is_submitted():
            forms.flash_errors(form)
        return self.render_template(
            "mynumber/io_import.html",
            form=form,
            report=report,
            shown=report.problems[:SHOWN_PROBLEMS] if report else [],
            confirm=TicketForm(ticket=str(ticket)) if ticket else None,
        )

    @expose("/confirm", methods=["POST"])
    @has_access
    def confirm(self):
        form = TicketForm()
        if not form.validate_on_submit():
            flash("確認の期限が切れました。もう一度アップロードしてください。", "warning")
            return redirect(url_for("ImportView.index"))
        try:
            layout_id, payload = tickets.take(
                db.session, context.vault(), form.ticket.data, g.user.id, "import"
            )
            encoding, _, data = payload.partition(b"\n")
            layout = layouts.get_by_id(db.session, layout_id)
            report = imports.import_csv(
                db.session,
                context.vault(),
                current_actor(),
                io.BytesIO(data),
                layout,
                encoding=encoding.decode("ascii"),
            )
        except (
            policy.PermissionDenied,
            LookupError,
            ValueError,
            AuditUnavailable,
            imports.ImportConflict,
        ) as exc:
            flash(str(exc), "danger")
            return redirect(url_for("ImportView.index"))
        form = ImportForm(formdata=None)
        form.layout.choices = _layout_choices()
        if report.committed:
            flash(report.summary(), "success")
        return self.render_template(
            "mynumber/io_import.html",
            form=form,
            report=report,
            shown=report.problems[:SHOWN_PROBLEMS],
            confirm=None,
        )


def _download(data: bytes, layout: layouts.Layout, encoding: str, prefix: str):
    stamp = dt.datetime.now(jptime.JST).strftime("%Y%m%d-%H%M")
    charset = "utf-8" if encoding == "utf-8-sig" else "shift_jis"
    response = send_file(
        io.BytesIO(data),
        mimetype=f"text/csv; charset={charset}",
        as_attachment=True,
        download_name=f"{prefix}_{layout.name}_{stamp}.csv",
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


class ExportView(BaseView):
    """CSV 出力: every person of a layout's kind, with a purpose, audited (ClientStaff)."""

    route_base = "/io/export"
    class_permission_name = "Numbers"
    method_permission_name = {"index": "export"}
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        form = ExportForm()
        form.layout.choices = _layout_choices()
        if form.validate_on_submit():
            out = io.BytesIO()
            try:
                layout = layouts.get_by_id(db.session, int(form.layout.data))
                result = exports.export_csv(
                    db.session,
                    context.vault(),
                    current_actor(),
                    layout,
                    out,
                    form.purpose.data,
                    encoding=form.encoding.data or None,
                )
            except (
                policy.PermissionDenied,
                exports.ExportRefused,
                CsvWriteError,
                LookupError,
                AuditUnavailable,
                VaultError,
            ) as exc:
                flash(str(exc), "danger")
            else:
                return _download(out.getvalue(), layout, result.encoding, "出力")
        elif form.is_submitted():
            forms.flash_errors(form)
        return self.render_template("mynumber/io_export.html", form=form)


class MatchView(BaseView):
    """一括照合: keys in, a report on screen, the matched rows as a one-time download."""

    route_base = "/io/match"
    class_permission_name = "Numbers"
    method_permission_name = {"index": "match", "download": "match"}
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        form = MatchForm()
        form.layout.choices = _layout_choices()
        result = None
        ticket = None
        if form.validate_on_submit():
            try:
                layout = layouts.get_by_id(db.session, int(form.layout.data))
                result = matching.bulk_match(
                    db.session,
                    current_actor(),
                    form.file.data.stream,
                    layout,
                    form.purpose.data,
                    encoding=form.key_encoding.data,
                )
                if result.person_ids:
                    payload = json.dumps(
                        {
                            "ids": [str(i) for i in result.person_ids],
                            "purpose": form.purpose.data.strip(),
                            "encoding": form.encoding.data or layout.encoding,
                            "counts": result.counts(),
                        },
                        ensure_ascii=False,
                    ).encode("utf-8")
                    ticket = tickets.create(
                        db.session, context.vault(), g.user.id, "match", layout.id, payload
                    )
            except (
                policy.PermissionDenied,
                matching.MatchError,
                LookupError,
                AuditUnavailable,
            ) as exc:
                flash(str(exc), "danger")
        elif form.is_submitted():
            forms.flash_errors(form)
        return self.render_template(
            "mynumber/io_match.html",
            form=form,
            result=result,
            download=TicketForm(ticket=str(ticket)) if ticket else None,
        )

    @expose("/download", methods=["POST"])
    @has_access
    def download(self):
        form = TicketForm()
        if not form.validate_on_submit():
            flash("確認の期限が切れました。もう一度照合してください。", "warning")
            return redirect(url_for("MatchView.index"))
        out = io.BytesIO()
        try:
            layout_id, payload = tickets.take(
                db.session, context.vault(), form.ticket.data, g.user.id, "match"
            )
            state = json.loads(payload)
            layout = layouts.get_by_id(db.session, layout_id)
            result = exports.export_csv(
                db.session,
                context.vault(),
                current_actor(),
                layout,
                out,
                state["purpose"],
                encoding=state["encoding"],
                person_ids=[uuid.UUID(i) for i in state["ids"]],
                context={"match": state["counts"]},
            )
        except (
            policy.PermissionDenied,
            exports.ExportRefused,
            CsvWriteError,
            LookupError,
            AuditUnavailable,
            VaultError,
        ) as exc:
            flash(str(exc), "danger")
            return redirect(url_for("MatchView.index"))
        return _download(out.getvalue(), layout, result.encoding, "照合結果")


class ColumnForm(Form):
    field = SelectField(
        "項目",
        choices=[("", "（使わない）")] + [(k, f.label) for k, f in layouts.FIELDS.items()],
        validators=[Optional()],
    )
    header = StringField("見出し", validators=[Optional(), Length(max=30)])


class LayoutForm(FlaskForm):
    name = StringField("様式名", validators=[DataRequired("様式名を入力してください")])
    kind = SelectField("対象", choices=list(layouts.KINDS.items()))
    date_format = SelectField("日付の形式", choices=list(layouts.DATE_FORMATS.items()))
    encoding = SelectField("文字コード", choices=list(layouts.ENCODINGS.items()))
    columns = FieldList(FormField(ColumnForm), min_entries=LAYOUT_SLOTS, max_entries=LAYOUT_SLOTS)


class LayoutView(BaseView):
    """CSV 様式: the client's formats — columns, order, labels, date format, encoding."""

    route_base = "/io/layouts"
    class_permission_name = "Layouts"
    method_permission_name = {"index": "list", "edit": "edit", "new": "edit", "delete": "edit"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        return self.render_template(
            "mynumber/layouts.html",
            items=layouts.list_layouts(db.session),
            fields=layouts.FIELDS,
            kinds=layouts.KINDS,
            date_formats=layouts.DATE_FORMATS,
            encodings=layouts.ENCODINGS,
            can_edit=policy.allows(current_actor(), "can_edit", "Layouts"),
            delete_form=FlaskForm(),
        )

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        return self._edit(None)

    @expose("/<int:layout_id>", methods=["GET", "POST"])
    @has_access
    def edit(self, layout_id: int):
        return self._edit(layout_id)

    def _edit(self, layout_id: int | None):
        current = None
        if layout_id is not None:
            try:
                current = layouts.get_by_id(db.session, layout_id)
            except LookupError as exc:
                flash(str(exc), "warning")
                return redirect(url_for("LayoutView.index"))
        form = LayoutForm()
        if not form.is_submitted() and current is not None:
            form = LayoutForm(
                formdata=None,
                name=current.name,
                kind=current.kind,
                date_format=current.date_format,
                encoding=current.encoding,
                columns=[{"field": f, "header": h} for f, h in current.columns],
            )
        if form.validate_on_submit():
            try:
                layout = layouts.validate(
                    form.name.data,
                    form.kind.data,
                    [(c["field"], c["header"]) for c in form.columns.data],
                    form.date_format.data,
                    form.encoding.data,
                )
                saved = layouts.save(db.session, current_actor(), layout, layout_id)
            except layouts.LayoutError as exc:
                db.session.rollback()
                for problem in exc.problems:
                    flash(problem, "warning")
            except (policy.PermissionDenied, LookupError, AuditUnavailable) as exc:
                flash(str(exc), "danger")
            else:
                missing = saved.missing_for_import()
                note = (
                    "（この様式は出力専用です。取り込みには "
                    + "、".join(layouts.FIELDS[m].label for m in missing)
                    + " の列が必要です）"
                    if missing
                    else ""
                )
                flash(f"様式「{saved.name}」を保存しました。{note}", "success")
                return redirect(url_for("LayoutView.index"))
        elif form.is_submitted():
            forms.flash_errors(form)
        return self.render_template(
            "mynumber/layout_edit.html", form=form, current=current, fields=layouts.FIELDS
        )

    @expose("/<int:layout_id>/delete", methods=["POST"])
    @has_access
    def delete(self, layout_id: int):
        if not FlaskForm().validate_on_submit():
            flash("画面を読み込み直してから、もう一度お試しください。", "warning")
            return redirect(url_for("LayoutView.index"))
        try:
            layouts.delete(db.session, current_actor(), layout_id)
        except layouts.LayoutError as exc:
            db.session.rollback()
            flash("、".join(exc.problems), "warning")
        except (policy.PermissionDenied, LookupError, AuditUnavailable) as exc:
            flash(str(exc), "danger")
        else:
            flash("様式を削除しました。", "success")
        return redirect(url_for("LayoutView.index"))
