"""収集キャンペーン: the client orders and follows a collection (target list, letters, progress,
status CSV); the operator is assigned to it and sends it (mail now, post by print batch)."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import StringField, TextAreaField

from app.access import assignments, policy
from app.collection import campaigns, kits, mailings, target_uploads, targets
from app.models import (
    Campaign,
    CampaignKind,
    Channel,
    CollectionRequest,
    LetterKind,
    PrintBatch,
    Stage,
    TargetUpload,
    db,
)
from app.platform import outbox
from app.web import context, downloads, forms
from app.web.identity import current_actor
from app.web.views.collection.errors import USER_ERRORS, fail, whole_number


class CampaignForm(FlaskForm):
    name = StringField(default="")
    kind = StringField(default="")
    deadline = StringField(default="")
    purpose_text = TextAreaField(default="")
    month = StringField()
    four_eyes = forms.Checkbox()


class TargetsForm(FlaskForm):
    file = FileField()
    dry_run = forms.Checkbox()


class OperatorForm(FlaskForm):
    """Assigning or unassigning an Operator (their user id)."""

    user_id = StringField()


class LetterForm(FlaskForm):
    kind = StringField(default="")
    subject = StringField(default="")
    body = TextAreaField(default="")


def _chosen_operator(form: OperatorForm) -> int:
    """The Operator picked in an assign / unassign form (its user id), or a Japanese refusal."""
    user_id = whole_number(form.user_id.data, "担当者")
    if user_id is None:
        raise assignments.AssignmentError("担当者: 選んでください")
    return user_id


class CampaignView(BaseView):
    """収集キャンペーン: the client orders and follows a collection; the operator sends it."""

    route_base = "/campaigns"
    class_permission_name = campaigns.VIEW
    method_permission_name = {
        "index": "list",
        "create": "add",
        "show": "show",
        "upload": "upload",
        "upload_result": "upload",
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
        form = forms.posted(CampaignForm)
        try:
            campaign = campaigns.create_campaign(
                db.session,
                current_actor(),
                name=form.name.data,
                kind=form.kind.data,
                deadline=form.deadline.data,
                purpose_text=form.purpose_text.data,
                month=form.month.data,
                four_eyes=form.four_eyes.data
                or bool(current_app.config.get("COLLECTION_FOUR_EYES")),
            )
            db.session.commit()
        except USER_ERRORS as exc:
            fail(exc)
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
        return self._show(context.row_or_404(Campaign, cid))

    @expose("/<string:cid>/targets", methods=["POST"])
    @has_access
    def upload(self, cid: str):
        """Accept the file and hand it to a job (sealed in the database, only its id in the
        job): the next page shows the check's progress, then every problem or the counts."""
        form = forms.posted(TargetsForm)
        campaign = context.row_or_404(Campaign, cid)
        data = form.file.data.read() if form.file.data else b""
        try:
            upload = target_uploads.create(
                db.session, context.vault(), current_actor(), campaign, data, form.dry_run.data
            )
        except targets.TargetFileError as exc:
            db.session.rollback()
            flash("対象者リストを登録しませんでした。", "danger")
            return self._show(campaign, exc.problems, 422)
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        # A job (RQ, or a thread of the embedded run): the page shows its progress meanwhile.
        outbox.dispatch_soon(db.session, [target_uploads.key(upload)])
        return redirect(url_for("CampaignView.upload_result", cid=campaign.id, uid=upload.id))

    @expose("/<string:cid>/targets/<string:uid>", methods=["GET"])
    @has_access
    def upload_result(self, cid: str, uid: str):
        """The upload's progress bar while its job runs; then every problem (the campaign
        page with the list, nothing loaded) or what was loaded."""
        campaign = context.row_or_404(Campaign, cid)
        try:
            upload = target_uploads.find(db.session, current_actor(), uid)
        except target_uploads.UploadNotFound:
            abort(404)
        if upload.campaign_id != campaign.id:
            abort(404)
        if upload.status in TargetUpload.RUNNING:
            return self.render_template(
                "mynumber/job_progress.html",
                title="対象者リストを確認しています",
                what=f"対象者リスト（{upload.size_bytes:,} バイト）",
                doing="確認・登録" if not upload.dry_run else "確認",
                job=outbox.progress(db.session, target_uploads.key(upload)),
                state=upload.status_label,
                back_url=url_for("CampaignView.show", cid=campaign.id),
                back_label="キャンペーンに戻る",
                refresh_seconds=1,
            )
        found = target_uploads.findings(context.vault(), upload)
        if upload.status == "refused":
            problems = found.get("problems", [])
            flash(
                f"対象者リストに {len(problems)} 件の問題があるため、登録しませんでした。",
                "danger",
            )
            return self._show(campaign, problems)
        if upload.status == "failed":
            flash(f"対象者リストを処理できませんでした: {found.get('error', '')}", "danger")
        elif upload.status == "checked":
            flash(
                f"確認のみ: {found['rows']} 行（{found['households']} 世帯・人）に問題はありません"
                f"（文字コード {found['encoding']}）。",
                "info",
            )
        else:
            _flash_loaded(found["loaded"])
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/<string:cid>/assign", methods=["POST"])
    @has_access
    def assign(self, cid: str):
        form = forms.posted(OperatorForm)
        campaign = context.row_or_404(Campaign, cid)
        try:
            row = assignments.assign(db.session, current_actor(), campaign, _chosen_operator(form))
            db.session.commit()
        except USER_ERRORS as exc:
            fail(exc)
        else:
            flash(f"{row.user_name} をこのキャンペーンの担当に割り当てました。", "success")
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/<string:cid>/unassign", methods=["POST"])
    @has_access
    def unassign(self, cid: str):
        form = forms.posted(OperatorForm)
        campaign = context.row_or_404(Campaign, cid)
        try:
            assignments.unassign(db.session, current_actor(), campaign, _chosen_operator(form))
            db.session.commit()
        except USER_ERRORS as exc:
            fail(exc)
        else:
            flash("担当を解除しました。", "success")
        return redirect(url_for("CampaignView.show", cid=campaign.id))

    @expose("/template/<string:kind>.csv", methods=["GET"])
    @has_access
    def template(self, kind: str):
        if kind not in CampaignKind.ALL:
            abort(404)
        name = "targets-employee.csv" if kind == CampaignKind.EMPLOYEE else "targets-external.csv"
        return downloads.attachment(targets.template_csv(kind), name, "text/csv; charset=utf-8")

    @expose("/<string:cid>/letters", methods=["GET", "POST"])
    @has_access
    def letters(self, cid: str):
        campaign = context.row_or_404(Campaign, cid)
        status = 200
        if request.method == "POST":
            form = forms.posted(LetterForm)
            kind = form.kind.data
            try:
                campaigns.update_letter(
                    db.session, current_actor(), campaign, kind, form.subject.data, form.body.data
                )
                db.session.commit()
                flash(f"「{LetterKind.LABELS.get(kind, kind)}」を保存しました。", "success")
                return redirect(url_for("CampaignView.letters", cid=campaign.id))
            except USER_ERRORS as exc:
                fail(exc)
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
        forms.posted(FlaskForm)
        campaign = context.row_or_404(Campaign, cid)
        try:
            result = mailings.dispatch(db.session, current_actor(), campaign)
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        # Promised in the dispatch transaction (the outbox); handed over now if Redis is up.
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
        forms.posted(FlaskForm)
        campaign = context.row_or_404(Campaign, cid)
        try:
            batch = kits.create_batch(db.session, current_actor(), campaign)
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        # A job (RQ, or a thread of the embedded run): the page shows its progress meanwhile.
        outbox.dispatch_soon(db.session, [outbox.key_for(kits.RENDER_PRINT_BATCH, batch.id)])
        flash(f"印刷バッチ {batch.id}（{batch.item_count} 通）の作成を始めました。", "success")
        return redirect(url_for("MailingView.progress", bid=batch.id))

    @expose("/<string:cid>/statuses.csv", methods=["GET"])
    @has_access
    def statuses(self, cid: str):
        campaign = context.row_or_404(Campaign, cid)
        try:
            data = campaigns.status_csv(db.session, current_actor(), campaign)
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("CampaignView.show", cid=campaign.id))
        name = f"campaign-{campaign.id}-statuses.csv"
        return downloads.attachment(data, name, "text/csv; charset=utf-8")

    @expose("/request/<string:rid>", methods=["GET"])
    @has_access
    def request_detail(self, rid: str):
        req = context.row_or_404(CollectionRequest, rid, uuid.UUID)
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


def _flash_loaded(result: dict) -> None:
    """What a load did, and the stored contacts the list disagreed with (never the values)."""
    flash(
        f"対象者リストを登録しました: 依頼 {result['requests_issued']} 件（メール "
        f"{result['emails']}・郵送 {result['posts']}）、新規 {result['people_created']} 人、"
        f"登録済みの人物 {result['people_matched']} 人、依頼済みのため省略 "
        f"{result['skipped_already_requested']} 件。",
        "success",
    )
    differs = result.get("contact_differs") or []
    if differs:
        shown = "、".join(differs[:20])
        more = len(differs) - 20
        flash(
            f"登録済みの連絡先と異なる項目が {len(differs)} 件あります"
            f"（{shown}{f' ほか {more} 件' if more > 0 else ''}）。対象者リストでは"
            "登録済みの連絡先を変更しないため、依頼は登録済みの連絡先に送付します。"
            "連絡先が変わった場合は、送付の前に人物情報を訂正してください。",
            "warning",
        )
