"""Billing screens: unit-price versions (SystemAdmin), the carrier's fee table and the postage
ledger (Operator). Add-only: a price or a posted entry is never edited in place. The checks
and the audit events are ``app.operations.billing``'s; these views only call them."""

from __future__ import annotations

from flask_appbuilder import ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import Optional

from app.core import jptime, mynumber
from app.models import BillingCategory, PostageEntry, PostageRate, UnitPrice, db
from app.operations import billing
from app.web.identity import current_actor

_YEN = "{:,} 円".format


class UnitPriceView(ModelView):
    datamodel = SQLAInterface(UnitPrice)
    class_permission_name = "UnitPrice"
    method_permission_name = {"list": "list", "show": "list", "add": "add"}
    base_permissions = ["can_list", "can_add"]
    base_order = ("effective_from", "desc")
    list_title = "マイナンバー収集料金単価表"
    add_title = "単価の登録（新しい版）"
    list_columns = ["category", "price_yen", "effective_from", "note", "created_by"]
    add_columns = ["category", "price_yen", "effective_from", "note", "correction_reason"]
    label_columns = {
        "category": "区分",
        "price_yen": "単価（円・税抜）",
        "effective_from": "適用開始日",
        "note": "備考",
        "created_by": "登録者",
    }
    formatters_columns = {
        "category": BillingCategory.label,
        "price_yen": _YEN,
        "note": lambda v: v or "",
        "effective_from": lambda d: d.strftime("%Y/%m/%d") if d else "",
    }
    add_form_extra_fields = {
        "category": SelectField(
            "区分", choices=[(c, BillingCategory.label(c)) for c in BillingCategory.ALL]
        ),
        "correction_reason": StringField(
            "訂正理由（送付済みの月に遡る場合）",
            description="送付済みの報告書は変わりません。その月は訂正版（第2版）の作成が必要になります",
        ),
    }
    description_columns = {
        "effective_from": "この日以降に発生した件数にこの単価を適用します（過去の版は変更しません）"
    }

    def pre_add(self, item: UnitPrice) -> None:
        reason = getattr(item, "correction_reason", None)
        affected = billing.check_price(db.session, item, reason)
        item.created_by = current_actor().name
        db.session.add(item)
        db.session.flush()  # the audit event commits with the price (FAB's add commits)
        billing.audit_price(db.session, current_actor(), item, affected)


class PostageRateView(ModelView):
    datamodel = SQLAInterface(PostageRate)
    class_permission_name = "Postage"
    method_permission_name = {"list": "list", "show": "list", "add": "add"}
    base_permissions = ["can_list", "can_add"]
    base_order = ("effective_from", "desc")
    list_title = "運送・郵送料金表"
    add_title = "料金表の登録（改定は新しい版として登録）"
    list_columns = ["carrier", "method", "price_yen", "effective_from", "submitted_to_client_on"]
    add_columns = ["carrier", "method", "price_yen", "effective_from", "submitted_to_client_on"]
    label_columns = {
        "carrier": "運送事業者",
        "method": "種別",
        "price_yen": "料金（円）",
        "effective_from": "適用開始日",
        "submitted_to_client_on": "発注者への提出日",
    }
    formatters_columns = {
        "price_yen": _YEN,
        "effective_from": lambda d: d.strftime("%Y/%m/%d") if d else "",
        "submitted_to_client_on": lambda d: d.strftime("%Y/%m/%d") if d else "未提出",
    }

    def pre_add(self, item: PostageRate) -> None:
        billing.add_rate(db.session, current_actor(), item)


class PostageEntryView(ModelView):
    datamodel = SQLAInterface(PostageEntry)
    class_permission_name = "Postage"
    method_permission_name = {"list": "list", "show": "list", "add": "add"}
    base_permissions = ["can_list", "can_add"]
    base_order = ("posted_on", "desc")
    list_title = "郵送費台帳（実費）"
    add_title = "発送・返送の記録"
    list_columns = [
        "posted_on",
        "direction",
        "carrier",
        "method",
        "cost_yen",
        "tracking_number",
        "recorded_by",
    ]
    add_columns = [
        "direction",
        "carrier",
        "method",
        "posted_on",
        "cost_yen",
        "tracking_number",
        "note",
    ]
    label_columns = {
        "posted_on": "日付",
        "direction": "区分",
        "carrier": "運送事業者",
        "method": "種別",
        "cost_yen": "料金（円）",
        "tracking_number": "追跡番号",
        "recorded_by": "記録者",
        "note": "備考",
    }
    formatters_columns = {
        "direction": lambda v: PostageEntry.DIRECTION_LABELS.get(v, v),
        "cost_yen": _YEN,
        "posted_on": lambda d: d.strftime("%Y/%m/%d"),
        # An empty cell, never Python's ``None``.
        "tracking_number": lambda v: v or "",
        "note": lambda v: v or "",
        "recorded_by": lambda v: v or "",
    }
    add_form_extra_fields = {
        "direction": SelectField("区分", choices=[("send", "発送"), ("return", "返送")]),
        # Optional: blank takes the fee table's rate (``billing.validate_postage``), which
        # also checks a value typed in.
        "cost_yen": IntegerField(
            "料金（円）",
            validators=[Optional()],
            description="空欄なら料金表のその日の料金を使います",
        ),
    }
    description_columns = {"cost_yen": "空欄なら料金表のその日の料金を使います"}
    search_columns = ["posted_on", "month", "direction", "carrier", "method", "tracking_number"]

    def pre_add(self, item: PostageEntry) -> None:
        mynumber.refuse_numbers({"備考": item.note})  # a tracking number may be 12 digits
        item.cost_yen = billing.validate_postage(
            db.session,
            direction=item.direction,
            carrier=(item.carrier or "").strip(),
            method=(item.method or "").strip(),
            posted_on=item.posted_on,
            cost_yen=item.cost_yen,
            today=jptime.today_jst(),
        )
        item.month = billing.month_of(item.posted_on)
        item.recorded_by = current_actor().name
        db.session.add(item)
        db.session.flush()  # the audit event commits with the entry (FAB's add commits)
        billing.audit_postage(db.session, current_actor(), item)
