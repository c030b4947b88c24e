"""Operator screens for intake: received submissions, opening one (audited unseal), a
deficiency, unlocking a locked link (the inquiry desk is ``app.web.views.desk``).

Opening shows everything on the page it renders: the numbers (a number stored for someone
else is flagged at once, ``app.collection.duplicates``) and the documents as zoomable images,
a PDF as its rendered pages. No document has a URL of its own: nothing is downloaded.

Acceptance (確認中 → 完了, registering the numbers) is the verification queue's
(``app.web.views.collection.verification``), never a bare status change here.
"""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField, TextAreaField

from app.access import assignments, policy
from app.audit.trail import AuditUnavailable
from app.collection import decisions, duplicates, opening, requests, terms
from app.collection.terms import IntakeError
from app.core import mynumber
from app.models import CollectionRequest, Person, RequestStatus, Submission, db
from app.vault.sealing import IntakeKeyError, SealError
from app.web import context, docimages, forms
from app.web.identity import current_actor


class OpenForm(FlaskForm):
    """Opening a submission: the purpose goes into the audit event of the unseal."""

    purpose = StringField(default="")


class DecisionForm(FlaskForm):
    """``deficient`` (with the codes ticked per subject and a note) or ``unlock``."""

    action = StringField(default="")
    note = TextAreaField()


class IntakeView(BaseView):
    """受付一覧: what subjects submitted, opened one at a time with an audited unseal."""

    route_base = "/intake"
    class_permission_name = terms.INTAKE_VIEW
    method_permission_name = {
        "index": "list",
        "open": "open",
        "decide": "decide",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        actor = current_actor()
        # An Operator sees the submissions of the campaigns assigned to them (app.access.assignments).
        submissions = opening.received_submissions(
            db.session, campaign_ids=assignments.assigned_campaign_ids(db.session, actor.user_id)
        )
        people = {
            p.id: p
            for p in db.session.execute(
                select(Person).where(Person.id.in_({s.request.person_id for s in submissions}))
            ).scalars()
        }
        locked = list(
            db.session.execute(
                select(CollectionRequest).where(
                    CollectionRequest.locked_at.is_not(None),
                    CollectionRequest.status.in_(RequestStatus.OPEN_FOR_INPUT),
                )
            ).scalars()
        )
        return self.render_template(
            "mynumber/intake_list.html",
            submissions=submissions,
            people=people,
            locked=locked,
            form=FlaskForm(),
        )

    @expose("/<string:sid>/open", methods=["POST"])
    @has_access
    def open(self, sid: str):
        form = forms.posted(OpenForm)
        submission = context.row_or_404(Submission, sid, uuid.UUID)
        try:
            opened = opening.open_submission(
                db.session, context.keyring(), current_actor(), submission.id, form.purpose.data
            )
        except policy.PermissionDenied as exc:
            flash(str(exc), "danger")
            return redirect(url_for("IntakeView.index"))
        except (AuditUnavailable, SealError, IntakeKeyError, LookupError) as exc:
            flash(str(exc), "danger")
            return redirect(url_for("IntakeView.index"))
        try:
            duplicates.flag(
                db.session, context.vault(), current_actor(), opened.request, opened.subjects
            )
        except AuditUnavailable as exc:  # the flag is audited: without the trail, no page
            flash(str(exc), "danger")
            return redirect(url_for("IntakeView.index"))
        subjects = [(s, docimages.documents(s)) for s in opened.subjects]
        return self.render_template(
            "mynumber/intake_show.html",
            opened=opened,
            subjects=subjects,
            person=db.session.get(Person, opened.request.person_id),
            grouped=lambda n: mynumber.format_grouped(n) if n else "（今回の提出に含まれません）",
            codes=terms.DEFICIENCY_CODES,
            form=FlaskForm(),
            history=opened.request.history,
            status_labels=RequestStatus.LABELS,
        )

    @expose("/request/<string:rid>/decide", methods=["POST"])
    @has_access
    def decide(self, rid: str):
        form = forms.posted(DecisionForm)
        req = context.row_or_404(CollectionRequest, rid, uuid.UUID)
        action = form.action.data
        actor = current_actor()
        try:
            if action == "deficient":
                items = forms.ticked("def-")
                decisions.mark_deficient(db.session, actor, req, items, form.note.data)
                message = "不備を登録しました。提出者のリンクで不備の内容と再提出が表示されます。"
            elif action == "unlock":
                requests.unlock(db.session, actor, req)
                message = "ロックを解除しました。"
            else:
                # 確認中 and 完了 belong to the verification queue (app.collection.verification): 完了
                # there registers the numbers, which a bare status change here would skip.
                abort(400)
            db.session.commit()
        except (IntakeError, policy.PermissionDenied, AuditUnavailable) as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        else:
            flash(message, "success")
        return redirect(url_for("IntakeView.index"))
