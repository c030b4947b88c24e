"""Report jobs: the daily run that delivers the monthly usage report (利用実績報告書).

Runs every day at 17:00 JST (08:00 UTC, the end of the desk's business hours, so March's
report on March 31 covers that business day) and does something only when a month is due and
not delivered yet (``app.operations.reports.delivery.run_scheduled``); idempotent by design.
"""

from __future__ import annotations

import logging

from flask import current_app

from app.jobs import job, scheduled
from app.models import db
from app.operations.reports import delivery

log = logging.getLogger(__name__)


def report_settings() -> dict:
    cfg = current_app.config
    return {
        "recipients": list(cfg.get("REPORT_RECIPIENTS") or []),
        "client": cfg["CLIENT_NAME"],
        "operator": cfg["OPERATOR_NAME"],
    }


@scheduled("monthly_report", "0 8 * * *")
@job
def monthly_report() -> str:
    """Generate and e-mail last month's report on the first business day after month end."""
    done = delivery.run_scheduled(db.session, **report_settings())
    result = "、".join(done) or "送信対象なし"
    log.info("monthly report: %s", result)
    return result
