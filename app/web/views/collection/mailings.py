"""送付・印刷: mail that failed or bounced (resend, or switch to post), and print batches
(download the PDFs, preview a letter, record the posting with its postage)."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField

from app.collection import campaigns, kits, mailings
from app.core import jptime
from app.models import (
    Campaign,
    Channel,
    CollectionRequest,
    Delivery,
    PrintBatch,
    PrintBatchFile,
    db,
)
from app.platform import outbox
from app.web import context, downloads, forms
from app.web.identity import current_actor
from app.web.views.collection.errors import USER_ERRORS, fail, whole_number


class ResendForm(FlaskForm):
    channel = StringField(default="")


class BounceForm(FlaskForm):
    reason = StringField(default="")


class PostedForm(FlaskForm):
    posted_on = StringField(default="")
    carrier = StringField(default="")
    method = StringField(default="")
    cost_yen = StringField()


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


def _pdf_response(data: bytes, filename: str) -> Response:
    return downloads.attachment(data, filename, "application/pdf")


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
        "progress": "list",
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
            # Promised work not handed over yet: what, since when, and the real reason.
            outbox_waiting=outbox.waiting(db.session, current_app.config, current_app.extensions),
        )

    @expose("/batch/<string:bid>/progress", methods=["GET"])
    @has_access
    def progress(self, bid: str):
        """A print batch being made: a progress bar that refreshes itself (no JavaScript
        needed); once the batch is ready (or failed) the 送付・印刷 page takes over."""
        batch = context.row_or_404(PrintBatch, bid)
        if batch.status not in ("queued", "rendering"):
            if batch.status == "failed":
                flash(
                    f"印刷バッチ {batch.id} を作成できませんでした: {batch.error or ''}", "danger"
                )
            else:
                flash(f"印刷バッチ {batch.id}（{batch.item_count} 通）を作成しました。", "success")
            return redirect(url_for("MailingView.index"))
        job = outbox.progress(db.session, outbox.key_for(kits.RENDER_PRINT_BATCH, batch.id))
        return self.render_template(
            "mynumber/job_progress.html",
            title=f"印刷バッチ {batch.id} を作成しています",
            what=f"{batch.item_count} 通の印刷ファイル（PDF）",
            job=job,
            state=batch.status_label,
            back_url=url_for("MailingView.index"),
            refresh_seconds=2,
        )

    @expose("/delivery/<string:did>/resend", methods=["POST"])
    @has_access
    def resend(self, did: str):
        form = forms.posted(ResendForm)
        delivery = context.row_or_404(Delivery, did)
        try:
            fresh = mailings.resend(db.session, current_actor(), delivery, form.channel.data)
            db.session.commit()
        except USER_ERRORS as exc:
            fail(exc)
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
        form = forms.posted(BounceForm)
        try:
            mailings.record_bounce(
                db.session,
                current_actor(),
                delivery_id=context.row_or_404(Delivery, did).id,
                reason=form.reason.data,
            )
            db.session.commit()
            flash("不達を記録しました。", "success")
        except USER_ERRORS as exc:
            fail(exc)
        return redirect(url_for("MailingView.index"))

    @expose("/batch/<string:bid>/<string:part>.pdf", methods=["GET"])
    @has_access
    def batch_file(self, bid: str, part: str):
        batch = context.row_or_404(PrintBatch, bid)
        if not (part.isdigit() or part == "all"):
            abort(404)
        try:
            if part == "all":
                data = kits.batch_pdf(db.session, context.vault(), current_actor(), batch)
            else:
                data = kits.batch_file(
                    db.session, context.vault(), current_actor(), batch, int(part)
                )
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("MailingView.index"))
        return _pdf_response(data, f"print-batch-{batch.id}-{part}.pdf")

    @expose("/delivery/<string:did>/preview.pdf", methods=["GET"])
    @has_access
    def preview(self, did: str):
        delivery = context.row_or_404(Delivery, did)
        try:
            data = kits.preview(
                db.session, context.vault(), context.keyring(), current_actor(), delivery.id
            )
        except USER_ERRORS as exc:
            fail(exc)
            return redirect(url_for("MailingView.index"))
        return _pdf_response(data, f"letter-{delivery.id}.pdf")

    @expose("/batch/<string:bid>/posted", methods=["POST"])
    @has_access
    def posted(self, bid: str):
        form = forms.posted(PostedForm)
        batch = context.row_or_404(PrintBatch, bid)
        try:
            posted_on = jptime.parse_date(form.posted_on.data)
        except jptime.InvalidDate as exc:
            fail(campaigns.CampaignError(f"発送日: {exc}"))
            return redirect(url_for("MailingView.index"))
        if not forms.confirmed():
            return self.render_template(
                "mynumber/confirm.html",
                **forms.confirmation(
                    f"印刷バッチ {batch.id} を発送済みにしますか",
                    [
                        f"{batch.item_count} 通を {posted_on:%Y/%m/%d} に"
                        f"{form.carrier.data} {form.method.data}で発送したと記録し、郵送費を計上します。",
                        "印刷ファイル（PDF）は削除され、もう一度ダウンロードすることはできません。"
                        "すべて印刷できていることを確かめてから進んでください。",
                    ],
                    "発送済みにする（印刷ファイルを削除）",
                    url_for("MailingView.index"),
                ),
            )
        try:
            count = kits.mark_posted(
                db.session,
                current_actor(),
                batch,
                posted_on=posted_on,
                carrier=form.carrier.data,
                method=form.method.data,
                cost_yen=whole_number(form.cost_yen.data, "料金（1通あたり）"),
            )
            db.session.commit()
        except (*USER_ERRORS, kits.billing.BillingError) as exc:
            fail(exc)
            return redirect(url_for("MailingView.index"))
        flash(
            f"印刷バッチ {batch.id} の {count} 通を発送済みにしました（郵送費を記録）。", "success"
        )
        return redirect(url_for("MailingView.index"))
