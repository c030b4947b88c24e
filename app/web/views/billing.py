"""Billing screens: unit-price versions (SystemAdmin), the carrier's fee table and the postage
ledger (Operator). Add-only: a price or a posted entry is never edited in place."""

from __future__ import annotations

from flask_appbuilder import ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import SelectField

from app.audit import trail
from app.core import mynumber
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
    add_columns = ["category", "price_yen", "effective_from", "note"]
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
        )
    }
    description_columns = {
        "effective_from": "この日以降に発生した件数にこの単価を適用します（過去の版は変更しません）"
    }

    def pre_add(self, item: UnitPrice) -> None:
        billing.validate_price(item.category, item.price_yen, item.effective_from)
        item.created_by = current_actor().name

    def post_add(self, item: UnitPrice) -> None:
        trail.record(
            db.session,
            current_actor(),
            "billing.price_set",
            object_type="unit_price",
            object_ids=[item.id],
            details={
                "category": item.category,
                "price_yen": item.price_yen,
                "effective_from": item.effective_from.isoformat(),
            },
            commit=True,
        )


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
        if not item.carrier or not item.method:
            raise billing.BillingError("運送事業者と種別を入力してください")
        if item.price_yen is None or item.price_yen < 0:
            raise billing.BillingError("料金（円）は0以上の整数で入力してください")
        item.created_by = current_actor().name


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
        "direction": SelectField("区分", choices=[("send", "発送"), ("return", "返送")])
    }
    description_columns = {"cost_yen": "空欄なら料金表のその日の料金を使います"}
    search_columns = ["posted_on", "month", "direction", "carrier", "method", "tracking_number"]

    def pre_add(self, item: PostageEntry) -> None:
        mynumber.refuse_numbers({"備考": item.note})  # a tracking number may be 12 digits
        if item.posted_on is None:
            raise billing.BillingError("日付を入力してください")
        if item.cost_yen is None:
            rate = billing.rate_on(db.session, item.carrier, item.method, item.posted_on)
            if rate is None:
                raise billing.BillingError(
                    f"{item.carrier} {item.method} の料金表（{item.posted_on:%Y/%m/%d} 時点）がありません"
                )
            item.cost_yen = rate
        item.month = billing.month_of(item.posted_on)
        item.recorded_by = current_actor().name
