"""人物の管理: add and edit people, households, names, 退職 dates, re-issued numbers.

Every action is a POST with CSRF to a service in ``app.people.records`` (validated like the import,
audited with the names of the changed fields). A service changes only the fields a page sent
(the pages of an employee, an external member and a dependent show different ones), so each
action passes on the fields of ``RecordForm`` that came with the request. Numbers typed here
are never echoed back.
"""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField

from app.access import policy
from app.audit import trail
from app.audit.trail import AuditUnavailable
from app.core import mynumber
from app.models import Person, PersonKind, db
from app.people import records, registry
from app.vault.envelopes import VaultError
from app.web import context, forms
from app.web.identity import current_actor

ADD_FIELDS = ("code", "name", "name_kana", "birth_date", "postal_code", "address", "number")
DEPENDENT_FIELDS = ("name", "name_kana", "relation", "birth_date", "number")
EDIT_FIELDS = ("code", "name_kana", "birth_date", "relation", "postal_code", "address", "email")


class RecordForm(FlaskForm):
    """Every field the 人物の管理 pages post; each action reads the ones it names."""

    code = StringField()
    name = StringField()
    name_kana = StringField()
    birth_date = StringField()
    relation = StringField()
    postal_code = StringField()
    address = StringField()
    email = StringField()
    number = StringField()
    reason = StringField()
    changed_on = StringField()
    ended_on = StringField()


def _person(pid: str) -> Person:
    try:
        key = uuid.UUID(pid)
    except ValueError:
        abort(404)
    person = db.session.get(Person, key)
    if person is None or person.status != "active":
        abort(404)
    return person


class RecordsView(BaseView):
    """HR staff keep the records right (ClientStaff: ``can_edit`` on People)."""

    route_base = "/records"
    class_permission_name = "People"
    method_permission_name = {
        "new": "edit",
        "show": "edit",
        "edit": "edit",
        "name": "edit",
        "number": "edit",
        "end": "edit",
        "dependent": "edit",
        "remove": "edit",
        "renumber": "edit",
    }
    default_view = "new"

    # -- add -----------------------------------------------------------------------------
    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        kind = request.args.get("kind", PersonKind.EMPLOYEE)  # the page's own URL names it
        if kind not in (PersonKind.EMPLOYEE, PersonKind.EXTERNAL):
            kind = PersonKind.EMPLOYEE
        values = {}
        if request.method == "POST":
            values = forms.sent(forms.posted(RecordForm), ADD_FIELDS)
            try:
                person = records.add_from_form(
                    db.session, context.vault(), current_actor(), kind, values
                )
            except records.RecordError as exc:
                db.session.rollback()
                for problem in exc.problems:
                    flash(problem, "warning")
            except (policy.PermissionDenied, AuditUnavailable, VaultError) as exc:
                db.session.rollback()
                flash(str(exc), "danger")
            else:
                flash(f"{person.name} さんを登録しました。", "success")
                return redirect(url_for("RecordsView.show", pid=person.id))
        values.pop("number", None)
        return self.render_template(
            "mynumber/records_new.html",
            kind=kind,
            kind_label=PersonKind.LABELS[kind],
            values=values,
            form=FlaskForm(),
        )

    # -- the record ----------------------------------------------------------------------
    @expose("/<string:pid>", methods=["GET"])
    @has_access
    def show(self, pid: str):
        person = _person(pid)
        trail.record(
            db.session,
            current_actor(),
            "people.view",
            object_type="person",
            object_ids=[person.id],
            details={"screen": "records"},
            commit=True,
        )
        return self._render_show(person)

    def _render_show(self, person: Person, failed: str = "", values: dict | None = None):
        """The record page; after a refused action, that action's form shows what was typed
        (``failed`` names it, ``values`` holds the fields, never a number)."""
        head = person.household_head or person
        members = []
        removed = []
        if person.kind != PersonKind.EXTERNAL:
            for member in [head, *head.dependents]:
                target = members if member.status == "active" else removed
                target.append((member, registry.masked_number(db.session, member.id)))
        return self.render_template(
            "mynumber/records_show.html",
            person=person,
            head=head,
            members=members,
            removed=removed,
            history=records.history(db.session, person.id),
            masked=mynumber.mask,
            form=FlaskForm(),
            today=records.today().strftime("%Y/%m/%d"),
            failed=failed,
            values={k: v for k, v in (values or {}).items() if k != "number"},
        )

    def _act(self, pid: str, action, message: str, failed: str = "", page: Person | None = None):
        """Run one POST action on a person (``action(person, form)``). Done: the record again
        (a redirect). Refused: the problems above the record page, the action's form keeping
        everything typed (``failed`` names the form; ``page`` is the person whose page it is)."""
        person = _person(pid)
        form = forms.posted(RecordForm)
        try:
            outcome = action(person, form)
        except records.RecordError as exc:
            db.session.rollback()
            for problem in exc.problems:
                flash(problem, "warning")
        except (policy.PermissionDenied, AuditUnavailable, VaultError, LookupError) as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        else:
            flash(message if not callable(message) else message(outcome), "success")
            return redirect(url_for("RecordsView.show", pid=person.id))
        typed = {name: field.data for name, field in form._fields.items() if field.raw_data}
        return self._render_show(
            page or person, failed or (request.endpoint or "").rsplit(".", 1)[-1], typed
        )

    @expose("/<string:pid>/edit", methods=["POST"])
    @has_access
    def edit(self, pid: str):
        return self._act(
            pid,
            lambda p, form: records.edit_person(
                db.session, context.vault(), current_actor(), p.id, forms.sent(form, EDIT_FIELDS)
            ),
            lambda changed: (
                "変更しました: " + "、".join(records.LABELS[c] for c in changed)
                if changed
                else "変更はありません。"
            ),
        )

    @expose("/<string:pid>/name", methods=["POST"])
    @has_access
    def name(self, pid: str):
        return self._act(
            pid,
            lambda p, form: records.change_name(
                db.session,
                current_actor(),
                p.id,
                forms.sent(form, ("name", "name_kana", "changed_on", "reason")),
            ),
            "氏名を変更し、変更履歴に記録しました。",
        )

    @expose("/<string:pid>/number", methods=["POST"])
    @has_access
    def number(self, pid: str):
        return self._act(
            pid,
            lambda p, form: records.replace_number(
                db.session,
                context.vault(),
                current_actor(),
                p.id,
                forms.sent(form, ("number", "reason")),
            ),
            "個人番号を登録しました（以前の番号は暗号化したまま「変更前」として保管しています）。",
        )

    @expose("/<string:pid>/end", methods=["POST"])
    @has_access
    def end(self, pid: str):
        person = _person(pid)
        if not forms.confirmed():
            ended_on = request.form.get("ended_on", "").strip()
            what = "退職日" if person.kind != PersonKind.EXTERNAL else "委嘱終了日"
            return self.render_template(
                "mynumber/confirm.html",
                **forms.confirmation(
                    f"{what}を記録しますか",
                    [
                        f"{person.name} さんの{what}を「{ended_on or '（空欄）'}」として記録します。",
                        "保管期間はこの日から数えます。日付をもう一度確かめてください。",
                    ],
                    f"{what}を記録する",
                    url_for("RecordsView.show", pid=person.id),
                ),
            )
        return self._act(
            pid,
            lambda p, form: records.record_end(
                db.session, current_actor(), p.id, forms.sent(form, ("ended_on",))
            ),
            "退職日・委嘱終了日を記録しました（保管期間はこの日から数えます）。",
        )

    @expose("/<string:pid>/dependents", methods=["POST"])
    @has_access
    def dependent(self, pid: str):
        return self._act(
            pid,
            lambda p, form: records.add_dependent(
                db.session,
                context.vault(),
                current_actor(),
                p.id,
                forms.sent(form, DEPENDENT_FIELDS),
            ),
            lambda d: f"扶養親族を追加しました（扶養者コード {d.dependent_code}）。",
        )

    @expose("/<string:pid>/remove", methods=["POST"])
    @has_access
    def remove(self, pid: str):
        person = _person(pid)
        head_id = person.household_head_id
        if not forms.confirmed():
            return self.render_template(
                "mynumber/confirm.html",
                **forms.confirmation(
                    "扶養から削除しますか",
                    [
                        f"{person.name} さん（{person.dependent_code}）を扶養から削除します。",
                        f"扶養から外れた日: {request.form.get('ended_on', '').strip() or '（空欄）'}"
                        f"　理由: {request.form.get('reason', '').strip() or '（空欄）'}",
                        "個人番号などの記録は廃棄の時期まで保管され、必要なら扶養者コードが振り直されます。",
                    ],
                    "扶養から削除する",
                    url_for("RecordsView.show", pid=head_id or person.id),
                ),
            )
        response = self._act(
            pid,
            lambda p, form: records.remove_dependent(
                db.session, current_actor(), p.id, forms.sent(form, ("ended_on", "reason"))
            ),
            lambda changes: (
                "扶養から削除しました。"
                + (
                    "扶養者コードを振り直しました: " + "、".join(f"{a}→{b}" for a, b in changes)
                    if changes
                    else ""
                )
            ),
            failed=f"remove-{person.id}",
            page=person.household_head,
        )
        removed = db.session.execute(
            select(Person.status).where(Person.id == person.id)
        ).scalar_one()
        if removed == records.REMOVED and head_id:
            return redirect(url_for("RecordsView.show", pid=head_id))
        return response

    @expose("/<string:pid>/renumber", methods=["POST"])
    @has_access
    def renumber(self, pid: str):
        return self._act(
            pid,
            lambda p, _form: records.renumber(db.session, current_actor(), p.id),
            lambda changes: (
                "扶養者コードを振り直しました: " + "、".join(f"{a}→{b}" for a, b in changes)
                if changes
                else "振り直しは不要でした。"
            ),
        )
