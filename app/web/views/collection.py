"""Collection screens (issue 5): campaigns (client and operator), deliveries and print
batches, paper intake with blind double keying, the verification queue.

Thin, like every view here: parse the form, call the service (which checks the policy and
audits), render. Numbers are only ever *entered* on these screens (paper keying, never echoed
back) or shown on the opened case to the operator who claimed it.
"""

from __future__ import annotations

import uuid

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from sqlalchemy import select

from app.access import assignments, policy
from app.audit.trail import AuditUnavailable
from app.collection import campaigns, kits, links, mailings, paper, targets, terms, verification
from app.collection.subjects import is_employee_request
from app.core import jptime, mynumber
from app.models import (
    Campaign,
    CampaignKind,
    Channel,
    CollectionRequest,
    Delivery,
    LetterKind,
    PaperIntake,
    PrintBatch,
    PrintBatchFile,
    Stage,
    VerificationCase,
    db,
)
from app.platform import outbox
from app.vault.sealing import IntakeKeyError, SealError
from app.web.identity import current_actor

USER_ERRORS = (
    assignments.AssignmentError,
    campaigns.CampaignError,
    mailings.MailingError,
    kits.KitError,
    paper.PaperError,
    verification.VerificationError,
    terms.IntakeError,
    policy.PermissionDenied,
    AuditUnavailable,
    links.LinkUnavailable,
    IntakeKeyError,
    SealError,
)


def _vault():
    return current_app.extensions["mynumber_vault"]


def _keyring():
    return current_app.extensions["mynumber_keyring"]


def _chosen_operator() -> int:
    """The Operator picked in an assign / unassign form (its user id), or a Japanese refusal."""
    user_id = _int(request.form.get("user_id"), "担当者")
    if user_id is None:
        raise assignments.AssignmentError("担当者: 選んでください")
    return user_id


def _csrf() -> None:
    if not FlaskForm().validate_on_submit():
        abort(400)


def _fail(exc: Exception) -> None:
    db.session.rollback()
    flash(str(exc), "danger")


def _int(value: str | None, label: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise campaigns.CampaignError(f"{label}: 整数で入力してください") from None
    if number < 0:
        raise campaigns.CampaignError(f"{label}: 0以上で入力してください")
    return number


def _get(model, key, convert=int):
    try:
        item = db.session.get(model, convert(key))
    except (ValueError, TypeError):
        abort(404)
    if item is None:
        abort(404)
    return item


def _pdf_response(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- campaigns -------------------------------------------------------------------------------
class CampaignView(BaseView):
    """収集キャンペーン: the client orders and follows a collection; the operator sends it."""

    route_base = "/campaigns"
    class_permission_name = campaigns.VIEW
    method_permission_name = {
        "index": "list",
        "create": "add",
        "show": "show",
        "upload": "upload",
        "template": "upload",
        "assign": "assign",
        "unassign": "assign",
        "letters": "letters",
        "dispatch": "send",
        "print_batch": "print",
        "statuses": "export",
        "request_detail": "show",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        items = list(
            db.session.execute(select(Campaign).order_by(Campaign.created_at.desc())).scalars()
        )
        return self.render_template(
            "mynumber/campaign_list.html",
            items=[(c, campaigns.summary(db.session, c)) for c in items],
            kinds=CampaignKind.LABELS,
            form=FlaskForm(),
            can_add=policy.allows(current_actor(), "can_add", campaigns.VIEW),
            default_purpose=campaigns.DEFAULT_PURPOSE,
        )

    @expose("/create", methods=["POST"])
    @has_access
    def create(self):
        _csrf()
        form = request.form
        try:
            campaign = campaigns.create_campaign(
                db.session,
                current_actor(),
                name=form.get("name", ""),
                kind=form.get("kind", ""),
                deadline=form.get("deadline", ""),
                purpose_text=form.get("purpose_text", ""),
                month=form.get("month"),
                four_eyes=form.get("four_eyes") == "1"
                or bool(current_app.config.get("COLLECTION_FOUR_EYES")),
            )
            db.session.commit()
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("CampaignView.index"))
        flash(
            f"キャンペーンを作成しました（提出期限 {campaigns.format_date(campaign.deadline)}）。"
            "対象者リストを登録してください。",
            "success",
        )
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    def _show(self, campaign: Campaign, problems: list[str] | None = None, status: int = 200):
        actor = current_actor()
        reqs = campaigns.campaign_requests(db.session, campaign.id)
        stage_of = campaigns.stages(db.session, reqs)
        counts = campaigns.counts(db.session, campaign.id)
        total = sum(v for k, v in counts.items() if k != Stage.CANCELLED)
        points = campaigns.progress(db.session, campaign)
        batches = list(
            db.session.execute(
                select(PrintBatch)
                .where(PrintBatch.campaign_id == campaign.id)
                .order_by(PrintBatch.created_at.desc())
            ).scalars()
        )
        return self.render_template(
            "mynumber/campaign_show.html",
            campaign=campaign,
            counts=counts,
            total=total,
            stage_labels=Stage.LABELS,
            chart=campaigns.progress_svg(points, total, campaign.deadline),
            overdue=campaigns.overdue(db.session, campaign.id),
            requests=reqs[:500],
            more=max(0, len(reqs) - 500),
            stage_of=stage_of,
            channels=Channel.LABELS,
            batches=batches,
            problems=problems,
            pending_letters=len(kits.pending_letters(db.session, campaign.id)),
            assigned=assignments.current(db.session, campaign.id),
            candidates=assignments.candidates(db.session)
            if policy.allows(actor, "can_assign", campaigns.VIEW)
            else [],
            form=FlaskForm(),
            can=lambda perm: policy.allows(actor, perm, campaigns.VIEW),
            fmt=campaigns.format_date,
        ), status

    @expose("/<string:cid>", methods=["GET"])
    @has_access
    def show(self, cid: str):
        return self._show(_get(Campaign, cid))

    @expose("/<string:cid>/targets", methods=["POST"])
    @has_access
    def upload(self, cid: str):
        _csrf()
        campaign = _get(Campaign, cid)
        upload = request.files.get("file")
        data = upload.read() if upload else b""
        dry_run = request.form.get("dry_run") == "1"
        try:
            parsed, result = targets.load(
                db.session, _vault(), _keyring(), current_actor(), campaign, data, dry_run=dry_run
            )
            db.session.commit()
        except targets.TargetFileError as exc:
            db.session.rollback()
            flash(
                f"対象者リストに {len(exc.problems)} 件の問題があるため、登録しませんでした。",
                "danger",
            )
            return self._show(campaign, exc.problems, 422)
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        if result is None:
            flash(
                f"確認のみ: {parsed.rows} 行（{len(parsed.households)} 世帯・人）に問題はありません"
                f"（文字コード {parsed.encoding}）。",
                "info",
            )
        else:
            flash(
                f"対象者リストを登録しました: 依頼 {result.requests_issued} 件（メール "
                f"{result.emails}・郵送 {result.posts}）、新規 {result.people_created} 人、"
                f"登録済みの人物 {result.people_matched} 人、依頼済みのため省略 "
                f"{result.skipped_already_requested} 件。",
                "success",
            )
            if result.contact_differs:
                shown = "、".join(result.contact_differs[:20])
                more = len(result.contact_differs) - 20
                flash(
                    f"登録済みの連絡先と異なる項目が {len(result.contact_differs)} 件あります"
                    f"（{shown}{f' ほか {more} 件' if more > 0 else ''}）。対象者リストでは"
                    "登録済みの連絡先を変更しないため、依頼は登録済みの連絡先に送付します。"
                    "連絡先が変わった場合は、送付の前に人物情報を訂正してください。",
                    "warning",
                )
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/<string:cid>/assign", methods=["POST"])
    @has_access
    def assign(self, cid: str):
        _csrf()
        campaign = _get(Campaign, cid)
        try:
            row = assignments.assign(db.session, current_actor(), campaign, _chosen_operator())
            db.session.commit()
        except USER_ERRORS as exc:
            _fail(exc)
        else:
            flash(f"{row.user_name} をこのキャンペーンの担当に割り当てました。", "success")
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/<string:cid>/unassign", methods=["POST"])
    @has_access
    def unassign(self, cid: str):
        _csrf()
        campaign = _get(Campaign, cid)
        try:
            assignments.unassign(db.session, current_actor(), campaign, _chosen_operator())
            db.session.commit()
        except USER_ERRORS as exc:
            _fail(exc)
        else:
            flash("担当を解除しました。", "success")
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/template/<string:kind>.csv", methods=["GET"])
    @has_access
    def template(self, kind: str):
        if kind not in CampaignKind.ALL:
            abort(404)
        response = Response(targets.template_csv(kind), mimetype="text/csv; charset=utf-8")
        name = "targets-employee.csv" if kind == CampaignKind.EMPLOYEE else "targets-external.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @expose("/<string:cid>/letters", methods=["GET", "POST"])
    @has_access
    def letters(self, cid: str):
        campaign = _get(Campaign, cid)
        status = 200
        if request.method == "POST":
            _csrf()
            kind = request.form.get("kind", "")
            try:
                campaigns.update_letter(
                    db.session,
                    current_actor(),
                    campaign,
                    kind,
                    request.form.get("subject", ""),
                    request.form.get("body", ""),
                )
                db.session.commit()
                flash(f"「{LetterKind.LABELS.get(kind, kind)}」を保存しました。", "success")
                return redirect(url_for("CampaignView.letters", cid=campaign.id))
            except USER_ERRORS as exc:
                _fail(exc)
                status = 422
        texts = {kind: campaigns.letter(db.session, campaign.id, kind) for kind in LetterKind.ALL}
        return self.render_template(
            "mynumber/campaign_letters.html",
            campaign=campaign,
            texts=texts,
            labels=LetterKind.LABELS,
            placeholders=campaigns.PLACEHOLDERS,
            form=FlaskForm(),
        ), status

    @expose("/<string:cid>/dispatch", methods=["POST"])
    @has_access
    def dispatch(self, cid: str):
        _csrf()
        campaign = _get(Campaign, cid)
        try:
            result = mailings.dispatch(db.session, current_actor(), campaign)
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        # issue 8: promised in the dispatch transaction; handed over now if Redis is up
        outbox.after_commit(db.session, mailings.outbox_keys(result.emails))
        flash(
            f"送付を開始しました: メール {len(result.emails)} 件を送信キューに入れました。"
            f"郵送 {result.posts} 件は印刷バッチで印刷します。",
            "success",
        )
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/<string:cid>/print", methods=["POST"])
    @has_access
    def print_batch(self, cid: str):
        _csrf()
        campaign = _get(Campaign, cid)
        try:
            batch = kits.create_batch(db.session, current_actor(), campaign)
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        outbox.after_commit(db.session, [outbox.key_for(kits.RENDER_PRINT_BATCH, batch.id)])
        flash(f"印刷バッチ {batch.id}（{batch.item_count} 通）を作成しました。", "success")
        return redirect(url_for("MailingView.index"))

    @expose("/<string:cid>/statuses.csv", methods=["GET"])
    @has_access
    def statuses(self, cid: str):
        campaign = _get(Campaign, cid)
        try:
            data = campaigns.status_csv(db.session, current_actor(), campaign)
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        response = Response(data, mimetype="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.id}-statuses.csv"'
        )
        return response

    @expose("/request/<string:rid>", methods=["GET"])
    @has_access
    def request_detail(self, rid: str):
        req = _get(CollectionRequest, rid, uuid.UUID)
        reqs = [req]
        return self.render_template(
            "mynumber/request_timeline.html",
            req=req,
            stage=Stage.LABELS[campaigns.stages(db.session, reqs)[req.id]],
            campaign=db.session.get(Campaign, req.campaign_id) if req.campaign_id else None,
            entries=campaigns.timeline(db.session, req),
            channels=Channel.LABELS,
            fmt=campaigns.format_date,
        )


# -- deliveries and print batches --------------------------------------------------------------
class MailingView(BaseView):
    """送付・印刷: failed or bounced mail, print batches (download, posted)."""

    route_base = "/mailings"
    class_permission_name = mailings.VIEW
    method_permission_name = {
        "index": "list",
        "resend": "retry",
        "bounce": "bounce",
        "batch_file": "print",
        "preview": "print",
        "posted": "post",
    }
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        batches = list(
            db.session.execute(
                select(PrintBatch).order_by(PrintBatch.created_at.desc()).limit(100)
            ).scalars()
        )
        files = {b.id: _batch_files(b.id) for b in batches if b.status == "ready"}
        problems = mailings.problems(db.session)
        reqs = {
            r.id: r
            for r in db.session.execute(
                select(CollectionRequest).where(
                    CollectionRequest.id.in_({d.request_id for d in problems})
                )
            ).scalars()
        }
        return self.render_template(
            "mynumber/mailings.html",
            batches=batches,
            files=files,
            problems=problems,
            reqs=reqs,
            campaigns={c.id: c for c in db.session.execute(select(Campaign)).scalars()},
            channels=Channel.LABELS,
            form=FlaskForm(),
            today=jptime.today_jst().isoformat(),
            carrier=current_app.config["KIT_CARRIER"],
            method=current_app.config["KIT_SEND_METHOD"],
            outbox_waiting=outbox.oldest_pending(db.session),  # issue 8
            outbox_counts=outbox.counts(db.session),
        )

    @expose("/delivery/<string:did>/resend", methods=["POST"])
    @has_access
    def resend(self, did: str):
        _csrf()
        delivery = _get(Delivery, did)
        try:
            fresh = mailings.resend(
                db.session, current_actor(), delivery, request.form.get("channel", "")
            )
            db.session.commit()
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("MailingView.index"))
        if fresh.channel == Channel.EMAIL:
            outbox.after_commit(db.session, mailings.outbox_keys([fresh.id]))
            flash("メールを再送信キューに入れました。", "success")
        else:
            flash("郵送に切り替えました。次の印刷バッチで印刷します。", "success")
        return redirect(url_for("MailingView.index"))

    @expose("/delivery/<string:did>/bounce", methods=["POST"])
    @has_access
    def bounce(self, did: str):
        _csrf()
        try:
            mailings.record_bounce(
                db.session,
                current_actor(),
                delivery_id=_get(Delivery, did).id,
                reason=request.form.get("reason", ""),
            )
            db.session.commit()
            flash("不達を記録しました。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return redirect(url_for("MailingView.index"))

    @expose("/batch/<string:bid>/<string:part>.pdf", methods=["GET"])
    @has_access
    def batch_file(self, bid: str, part: str):
        batch = _get(PrintBatch, bid)
        if not (part.isdigit() or part == "all"):
            abort(404)
        try:
            if part == "all":
                data = kits.batch_pdf(db.session, _vault(), current_actor(), batch)
            else:
                data = kits.batch_file(db.session, _vault(), current_actor(), batch, int(part))
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("MailingView.index"))
        return _pdf_response(data, f"print-batch-{batch.id}-{part}.pdf")

    @expose("/delivery/<string:did>/preview.pdf", methods=["GET"])
    @has_access
    def preview(self, did: str):
        delivery = _get(Delivery, did)
        try:
            data = kits.preview(db.session, _vault(), _keyring(), current_actor(), delivery.id)
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("MailingView.index"))
        return _pdf_response(data, f"letter-{delivery.id}.pdf")

    @expose("/batch/<string:bid>/posted", methods=["POST"])
    @has_access
    def posted(self, bid: str):
        _csrf()
        batch = _get(PrintBatch, bid)
        form = request.form
        try:
            posted_on = jptime.parse_date(form.get("posted_on", ""))
            count = kits.mark_posted(
                db.session,
                current_actor(),
                batch,
                posted_on=posted_on,
                carrier=form.get("carrier", ""),
                method=form.get("method", ""),
                cost_yen=_int(form.get("cost_yen"), "料金（1通あたり）"),
            )
            db.session.commit()
        except jptime.InvalidDate as exc:
            _fail(campaigns.CampaignError(f"発送日: {exc}"))
            return redirect(url_for("MailingView.index"))
        except (*USER_ERRORS, kits.billing.BillingError) as exc:
            _fail(exc)
            return redirect(url_for("MailingView.index"))
        flash(
            f"印刷バッチ {batch.id} の {count} 通を発送済みにしました（郵送費を記録）。", "success"
        )
        return redirect(url_for("MailingView.index"))


def _batch_files(batch_id: int) -> list:
    return db.session.execute(
        select(
            PrintBatchFile.part_no,
            PrintBatchFile.pages,
            PrintBatchFile.first_position,
            PrintBatchFile.last_position,
        )
        .where(PrintBatchFile.batch_id == batch_id)
        .order_by(PrintBatchFile.part_no)
    ).all()


# -- paper intake --------------------------------------------------------------------------
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
        _csrf()
        form = request.form
        try:
            item = paper.receive_envelope(
                db.session,
                current_actor(),
                request_code=form.get("request_code", ""),
                received_on=form.get("received_on", ""),
                tracking=form.get("tracking_number"),
                carrier=form.get("carrier", ""),
                method=form.get("method", ""),
                cost_yen=_int(form.get("cost_yen"), "料金"),
            )
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("PaperView.index"))
        flash("封筒を受け付けました。申請用紙と確認書類をスキャンして登録してください。", "success")
        return redirect(url_for("PaperView.show", pid=item.id))

    @expose("/<string:pid>", methods=["GET"])
    @has_access
    def show(self, pid: str):
        item = _get(PaperIntake, pid, uuid.UUID)
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
            employee=is_employee_request(db.session, req),
            form=FlaskForm(),
            today=jptime.today_jst().isoformat(),
            fmt=campaigns.format_date,
        )

    def _back(self, item: PaperIntake):
        return redirect(url_for("PaperView.show", pid=item.id))

    @expose("/<string:pid>/scan", methods=["POST"])
    @has_access
    def scan(self, pid: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        upload = request.files.get("file")
        try:
            paper.add_scan(
                db.session,
                _keyring(),
                current_actor(),
                item,
                request.form.get("ref", ""),
                request.form.get("doc_type", ""),
                upload.read() if upload else b"",
            )
            flash("スキャン画像を登録しました（暗号化して保存）。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return self._back(item)

    @expose("/<string:pid>/scan/<string:part_id>/remove", methods=["POST"])
    @has_access
    def remove_scan(self, pid: str, part_id: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        try:
            part_uuid = uuid.UUID(part_id)
        except ValueError:
            abort(404)
        try:
            paper.remove_scan(db.session, current_actor(), item, part_uuid)
            flash("スキャン画像を削除しました。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return self._back(item)

    @expose("/<string:pid>/key", methods=["POST"])
    @has_access
    def key(self, pid: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        try:
            result = paper.key_number(
                db.session,
                _keyring(),
                current_actor(),
                item,
                request.form.get("ref", ""),
                request.form.get("number", ""),
            )
            flash(result.message, "warning" if result.mismatch else "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return self._back(item)

    @expose("/<string:pid>/dependent", methods=["POST"])
    @has_access
    def dependent(self, pid: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        form = request.form
        try:
            paper.add_dependent(
                db.session,
                _keyring(),
                current_actor(),
                item,
                name=form.get("name", ""),
                kana=form.get("kana"),
                relation=form.get("relation", ""),
                birth_date=form.get("birth_date", ""),
            )
            flash("追加の扶養親族を登録しました。番号を二重入力してください。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return self._back(item)

    @expose("/<string:pid>/exclude", methods=["POST"])
    @has_access
    def exclude(self, pid: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        try:
            paper.exclude(
                db.session,
                _keyring(),
                current_actor(),
                item,
                request.form.get("ref", ""),
                request.form.get("reason", ""),
            )
            flash("対象外として登録しました。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return self._back(item)

    @expose("/<string:pid>/finish", methods=["POST"])
    @has_access
    def finish(self, pid: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        try:
            submission = paper.finish(db.session, _keyring(), current_actor(), item)
        except USER_ERRORS as exc:
            _fail(exc)
            return self._back(item)
        flash(f"確認待ちに登録しました（受付番号 {submission.receipt_no}）。", "success")
        return redirect(url_for("PaperView.index"))

    @expose("/<string:pid>/return", methods=["POST"])
    @has_access
    def return_docs(self, pid: str):
        _csrf()
        item = _get(PaperIntake, pid, uuid.UUID)
        form = request.form
        try:
            paper.return_documents(
                db.session,
                current_actor(),
                item,
                sent_on=form.get("sent_on", ""),
                carrier=form.get("carrier", ""),
                method=form.get("method", ""),
                cost_yen=_int(form.get("cost_yen"), "料金"),
                tracking=form.get("tracking_number"),
            )
            flash("書類の返送を記録しました（郵送費を記録）。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return self._back(item)


# -- verification ----------------------------------------------------------------------------
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
        _csrf()
        req = _get(CollectionRequest, rid, uuid.UUID)
        try:
            case = verification.claim(db.session, current_actor(), req.id)
        except USER_ERRORS as exc:
            _fail(exc)
            return redirect(url_for("VerificationView.index"))
        flash(f"案件 {case.id} を担当しました。「開封して確認する」で内容を表示します。", "success")
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/approve", methods=["POST"])
    @has_access
    def approve(self, case_id: str):
        _csrf()
        case = _get(VerificationCase, case_id)
        try:
            verification.claim_approval(db.session, current_actor(), case.id)
            flash("承認作業を担当しました。開封して確認してください。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/release", methods=["POST"])
    @has_access
    def release(self, case_id: str):
        _csrf()
        case = _get(VerificationCase, case_id)
        try:
            verification.release(db.session, current_actor(), case.id)
            flash("担当を外しました。", "success")
        except USER_ERRORS as exc:
            _fail(exc)
        return redirect(url_for("VerificationView.index"))

    @expose("/case/<string:case_id>/open", methods=["POST"])
    @has_access
    def open(self, case_id: str):
        _csrf()
        case = _get(VerificationCase, case_id)
        try:
            view = verification.open_case(
                db.session, _keyring(), current_actor(), case.id, request.form.get("purpose", "")
            )
        except (*USER_ERRORS, LookupError) as exc:
            _fail(exc)
            return redirect(url_for("VerificationView.index"))
        import base64

        subjects = []
        for s in view.subjects:
            docs = [
                (
                    d,
                    "data:image/jpeg;base64," + base64.b64encode(d.data).decode("ascii")
                    if d.media_type == "image/jpeg"
                    else None,
                )
                for d in s.documents
            ]
            subjects.append((s, docs))
        return self.render_template(
            "mynumber/verification_case.html",
            view=view,
            subjects=subjects,
            grouped=lambda n: mynumber.format_grouped(n) if n else "（提出されていません）",
            combinations=terms.COMBINATIONS,
            check_items=verification.CHECK_ITEMS,
            codes=terms.DEFICIENCY_CODES,
            refusals=verification.REFUSAL_REASONS,
            history=view.request.history,
            form=FlaskForm(),
        )

    @expose("/case/<string:case_id>/accept", methods=["POST"])
    @has_access
    def accept(self, case_id: str):
        _csrf()
        case = _get(VerificationCase, case_id)
        form = request.form
        refs = form.getlist("ref")
        checklist = {
            ref: {
                "combination": form.get(f"combination-{ref}"),
                "number": form.get(f"number-{ref}") == "1",
                "identity": form.get(f"identity-{ref}") == "1",
            }
            for ref in refs
        }
        try:
            result = verification.accept(
                db.session,
                _vault(),
                _keyring(),
                current_actor(),
                case.id,
                checklist,
                form.get("note"),
            )
        except (*USER_ERRORS, LookupError) as exc:
            _fail(exc)
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
        _csrf()
        case = _get(VerificationCase, case_id)
        items = [
            (key[4:], code)
            for key in request.form
            if key.startswith("def-")
            for code in request.form.getlist(key)
        ]
        try:
            notice = verification.deficient(
                db.session, current_actor(), case.id, items, request.form.get("note")
            )
        except (*USER_ERRORS, LookupError) as exc:
            _fail(exc)
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
        _csrf()
        case = _get(VerificationCase, case_id)
        try:
            verification.refuse(
                db.session,
                current_actor(),
                case.id,
                request.form.get("reason", ""),
                request.form.get("note"),
            )
            flash("不受理として記録し、提出内容を削除しました。", "success")
        except (*USER_ERRORS, LookupError) as exc:
            _fail(exc)
        return redirect(url_for("VerificationView.index"))
