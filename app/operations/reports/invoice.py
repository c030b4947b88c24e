"""請求書 (a qualified invoice, 適格請求書) beside the 利用実績報告書, from the same figures.

It carries what an accounting desk checks: the issuer (受注者 name and address) with its
登録番号 (``T`` + 13 digits), 発行日, 契約件名, 責任者; one line per category and price version
so that 件数 × 単価 = 金額 can be checked; the 税抜 total, 消費税 at 10 % (rounded down once,
on the total, as the invoice rules require) and the tax-included total; the postage at cost
(立替金, outside the tax) broken down by carrier, service and rate; and, on its own page, the
carrier's fee table in force (spec 6-6: 「料金表を添えて」).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from app.core import jptime
from app.operations.reports import monthly
from app.platform.pdf import render_pdf

_REGISTRATION = re.compile(r"^T[0-9]{13}$")


@dataclass(frozen=True)
class Issuer:
    """The 受注者 as the invoice names it (settings ``MYNUMBER_OPERATOR_*`` and
    ``MYNUMBER_INVOICE_REGISTRATION_NUMBER``, ``MYNUMBER_CONTRACT_TITLE``,
    ``MYNUMBER_OPERATOR_RESPONSIBLE``)."""

    name: str
    postal_code: str
    address: str
    registration_number: str
    contract_title: str
    responsible: str


def registration_number(text: str | None) -> str:
    """``T`` + 13 digits (full-width and hyphens tolerated), or a Japanese error naming the
    setting."""
    value = unicodedata.normalize("NFKC", text or "").strip().upper()
    value = re.sub(r"[\s\-‐－ー]", "", value)
    if not _REGISTRATION.match(value):
        raise monthly.ReportError(
            "請求書: 登録番号（MYNUMBER_INVOICE_REGISTRATION_NUMBER）は T と13桁の数字です"
            f"（例: T1234567890123）。設定値: {text or '未設定'}"
        )
    return value


def issuer_from(config: dict) -> Issuer:
    """The issuer from the app's settings; every missing field is named in one message."""
    missing = [
        label
        for key, label in (
            ("OPERATOR_NAME", "受注者名（MYNUMBER_OPERATOR_NAME）"),
            ("OPERATOR_ADDRESS", "受注者の住所（MYNUMBER_OPERATOR_ADDRESS）"),
            ("CONTRACT_TITLE", "契約件名（MYNUMBER_CONTRACT_TITLE）"),
            ("OPERATOR_RESPONSIBLE", "責任者（MYNUMBER_OPERATOR_RESPONSIBLE）"),
        )
        if not (config.get(key) or "").strip()
    ]
    if missing:
        raise monthly.ReportError("請求書: 次の設定がありません: " + "、".join(missing))
    return Issuer(
        name=config["OPERATOR_NAME"].strip(),
        postal_code=(config.get("OPERATOR_POSTAL_CODE") or "").strip(),
        address=config["OPERATOR_ADDRESS"].strip(),
        registration_number=registration_number(config.get("INVOICE_REGISTRATION_NUMBER")),
        contract_title=config["CONTRACT_TITLE"].strip(),
        responsible=config["OPERATOR_RESPONSIBLE"].strip(),
    )


def figures(report: dict) -> dict:
    """The invoice's amounts from the report's figures: the service lines at 10 %, the
    postage at cost, and what is billed in all. Refused while a category has no price."""
    billing = report["billing"]
    if billing["total"] is None:
        raise monthly.ReportError(
            "請求書: 単価が登録されていない区分があります（"
            + "、".join(billing.get("unpriced") or [])
            + "）。単価表に登録してから作成してください"
        )
    postage = report["postage"]["total_yen"]
    return {
        "lines": [line for line in billing["lines"] if line["count"]],
        "subtotal": billing["total"],
        "tax_rate": billing["tax_rate"],
        "tax": billing["tax"],
        "total_with_tax": billing["total_with_tax"],
        "postage": postage,
        "billed": billing["total_with_tax"] + postage,
    }


def number(report: dict) -> str:
    """請求書番号: the month and the version, so a correction has its own number."""
    return f"{report['month'].replace('-', '')}-{report.get('version') or 1:02d}"


def to_pdf(report: dict, issuer: Issuer, client: str, issued_at: dt.datetime) -> bytes:
    issued = jptime.to_jst(issued_at).date()
    return render_pdf(
        "pdf/invoice.html",
        r=report,
        inv=figures(report),
        issuer=issuer,
        client=client,
        issued_on=f"{issued.year}年{issued.month}月{issued.day}日",
        invoice_number=number(report),
    )
