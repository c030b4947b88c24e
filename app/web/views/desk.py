"""問合せ窓口 screens: the Operators' desk (list, assign, answer, close) and the client's
own inquiries (file one, read the answers). Thin: every rule is in ``app.operations.desk``."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from app.access import policy
from app.audit.trail import AuditUnavailable
from app.models import Inquiry, InquiryStatus, db
from app.operations import desk
from app.platform import outbox
from app.web import forms
from app.web.identity import current_actor

_FAILURES = (desk.DeskError, policy.PermissionDenied, AuditUnavailable)


class StepForm(FlaskForm):
    """The next step of an inquiry: each step's page posts its own fields."""

    assignee_id = StringField()
    response = TextAreaField(default="")
    note = StringField()


class InquiryForm(FlaskForm):
    category = StringField(default="")
    body = TextAreaField(default="")


def _user_id(text: str | None) -> int:
    """The chosen user's id; anything else is 0, which the service refuses as nobody."""
    try:
        return int(text or "")
    except ValueError:
        return 0


class DeskView(BaseView):
    """お問い合わせ (Operators): every inquiry, its history, and the next step."""

    route_base = "/inquiryview"
    class_permission_name = desk.VIEW
    method_permission_name = {"index": "list", "show": "show", "act": "edit"}
    default_view = "index"

    @expose("/list/", methods=["GET"])
    @has_access
    def index(self):
        status = request.args.get("status") or None
        if status is not None and status not in InquiryStatus.LABELS:
            status = None
        items = desk.desk_list(db.session, current_actor(), status)
        return self.render_template(
            "mynumber/desk_list.html",
            items=items,
            status=status,
            labels=InquiryStatus.LABELS,
            categories=desk.CATEGORIES,
            state=desk.state(),
        )

    @expose("/<int:inquiry_id>", methods=["GET"])
    @has_access
    def show(self, inquiry_id: int):
        item = db.session.get(Inquiry, inquiry_id)
        if item is None:
            abort(404)
        return self.render_template(
            "mynumber/desk_show.html",
            item=item,
            form=FlaskForm(),
            operators=desk.operators(db.session),
            answer_note=desk.ANSWER_CHANNEL_TEXT[desk.answer_channel(item)].format(
                contact=item.contact
            ),
            categories=desk.CATEGORIES,
            transitions=desk.TRANSITIONS,
            statuses=InquiryStatus,
        )

    @expose("/<int:inquiry_id>/<string:step>", methods=["POST"])
    @has_access
    def act(self, inquiry_id: int, step: str):
        form = forms.posted(StepForm)
        actor = current_actor()
        try:
            if step == "assign":
                desk.assign(db.session, actor, inquiry_id, _user_id(form.assignee_id.data))
            elif step == "respond":
                item = desk.respond(db.session, actor, inquiry_id, form.response.data)
                key = desk.answer_key(item)
                if key:  # handed over now; the outbox retries it otherwise
                    outbox.after_commit(db.session, [key])
            elif step == "close":
                desk.close(db.session, actor, inquiry_id, form.note.data)
            elif step == "reopen":
                desk.reopen(db.session, actor, inquiry_id)
            else:
                abort(404)
        except _FAILURES as exc:
            db.session.rollback()
            flash(str(exc), "warning")
        else:
            flash("記録しました。", "success")
        return redirect(url_for("DeskView.show", inquiry_id=inquiry_id))


class ClientInquiryView(BaseView):
    """窓口への問合せ (ClientStaff): file an inquiry, follow one's own and read the answers."""

    route_base = "/my-inquiries"
    class_permission_name = desk.CLIENT_VIEW
    method_permission_name = {"index": "list", "new": "add", "show": "show"}
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        items = desk.own_inquiries(db.session, current_actor())
        return self.render_template(
            "mynumber/desk_client_list.html",
            items=items,
            categories=desk.CATEGORIES,
            state=desk.state(),
        )

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        form = InquiryForm()
        errors: dict[str, str] = {}
        values = {"category": "", "body": ""}
        if request.method == "POST":
            if not form.validate_on_submit():
                abort(400)
            values = {"category": form.category.data, "body": form.body.data}
            try:
                item = desk.file_from_portal(db.session, current_actor(), **values)
            except _FAILURES as exc:
                db.session.rollback()
                errors[getattr(exc, "field", None) or "body"] = str(exc)
                values["body"] = ""  # never echo back what was refused
            else:
                flash("お問い合わせを受け付けました。", "success")
                return redirect(url_for("ClientInquiryView.show", inquiry_id=item.id))
        html = self.render_template(
            "mynumber/desk_client_new.html",
            form=form,
            errors=errors,
            values=values,
            categories={c: desk.CATEGORIES[c] for c in desk.CLIENT_CATEGORIES},
            state=desk.state(),
        )
        return html, (422 if errors else 200)

    @expose("/<int:inquiry_id>", methods=["GET"])
    @has_access
    def show(self, inquiry_id: int):
        try:
            item = desk.own_inquiry(db.session, current_actor(), inquiry_id)
        except desk.DeskError:
            abort(404)
        return self.render_template(
            "mynumber/desk_client_show.html", item=item, categories=desk.CATEGORIES
        )
