"""The report as files: a Japanese PDF (WeasyPrint, ``pdf/monthly_report.html``) with a bar
chart of monthly collections drawn as SVG on the server, and a CSV (UTF-8 with BOM, or CP932)
whose cells are neutralised as ``app.platform.csvio`` does. Both are rendered from the same figures
(``app.operations.reports.monthly.compute`` or a stored snapshot)."""

from __future__ import annotations

import base64
import io

from markupsafe import escape

from app.operations.reports import monthly
from app.platform.csvio import CsvWriter
from app.platform.pdf import render_pdf

ENCODINGS = ("utf-8-sig", "cp932")


def bar_chart_svg(series: list[dict], title: str = "月別の収集実績") -> str:
    """Grouped bars per month (役職員 households, 外部委員等 people): a self-contained SVG
    element with integer ticks; no script, no external reference."""
    width, height, left, bottom, top, right = 720, 240, 44, 34, 26, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max([1, *[max(p["employee_households"], p["external_people"]) for p in series]])
    step = max(1, -(-highest // 4))
    top_value = step * -(-highest // step)
    slots = max(len(series), 1)
    slot_w = plot_w / slots
    bar_w = min(22.0, slot_w / 3)
    colors = (
        ("employee_households", "役職員（世帯）", "#1f77b4"),
        ("external_people", "外部委員等（人）", "#ff7f0e"),
    )

    def y_of(value: int) -> float:
        return top + plot_h * (1 - value / top_value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        'class="mnv-chart">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#ccc"/>',
    ]
    for value in range(0, top_value + 1, step):
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{value}</text>'
        )
    for i, point in enumerate(series):
        center = left + slot_w * (i + 0.5)
        for j, (key, label, color) in enumerate(colors):
            value = int(point[key])
            x = center - bar_w + j * bar_w
            y = y_of(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{color}">'
                f"<title>{escape(point['month'])} {escape(label)} {value}</title></rect>"
            )
        mon = int(point["month"][5:])
        parts.append(
            f'<text x="{center:.1f}" y="{height - 14}" font-size="11" '
            f'text-anchor="middle">{mon}月</text>'
        )
    for j, (_key, label, color) in enumerate(colors):
        x = left + 8 + j * 130
        parts.append(
            f'<rect x="{x}" y="{6}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{15}" font-size="11">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_data_uri(svg: str) -> str:
    """For the PDF: WeasyPrint's fetcher admits ``data:`` URLs only."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _n(value) -> str:
    return "" if value is None else str(value)


def rows(report: dict) -> list[list[str]]:
    """The report as (区分, 項目, 内訳, 値) rows, shared by the CSV (and readable alone)."""
    out: list[list[str]] = [
        ["報告", "対象月", "", report["month_label"]],
        ["報告", "対象期間", "", report["period"]],
        ["報告", "提出期限", "", report["due_on"]],
        ["報告", "集計日時", "", f"{report['computed_at']}（JST）"],
        ["報告", "版", "", f"第{report.get('version') or 1}版"],
    ]
    if report.get("correction"):
        out.append(["報告", "訂正理由", "", report["correction"]["reason"]])
    for group, label in monthly.GROUP_LABELS.items():
        for channel, channel_label in monthly.CHANNEL_LABELS.items():
            cell = report["collections"][group][channel]
            out.append(["収集", f"{label} {channel_label}", "世帯数", _n(cell["households"])])
            out.append(["収集", f"{label} {channel_label}", "人数", _n(cell["people"])])
    for group, label in monthly.GROUP_LABELS.items():
        for channel, channel_label in monthly.REMINDER_CHANNEL_LABELS.items():
            out.append(["督促", label, channel_label, _n(report["reminders"][group][channel])])
    out.append(["不備", "不備の通知", "件数", _n(report["deficiencies"])])
    for decision, label in monthly.DECISION_LABELS.items():
        out.append(["確認", "確認の結果", label, _n(report["verifications"][decision])])
    stored = report["stored"]
    for group, label in monthly.GROUP_LABELS.items():
        out.append(["保管", label, "世帯数", _n(stored[group]["households"])])
        out.append(["保管", label, "人数", _n(stored[group]["people"])])
    out.append(["保管", "合計", "人数", _n(stored["total_people"])])
    d = report["disposals"]
    out.append(["廃棄", "データの廃棄", "件数", _n(d["data_requests"])])
    for group, label in monthly.GROUP_LABELS.items():
        out.append(["廃棄", label, "人数", _n(d["people"][group])])
    out.append(["廃棄", "紙の原本・資料の廃棄", "件数", _n(d["material_requests"])])
    bill = report["billing"]
    for line in bill["lines"]:
        name = line["label"]
        if line.get("price_from"):
            name += f"（単価 {line['price_from']} 適用）"
        out.append(["請求", name, f"件数（/{line['unit']}）", _n(line["count"])])
        if line.get("reminders") is not None:
            out.append(["請求", name, "督促の送付（回）", _n(line["reminders"])])
        out.append(["請求", name, "単価（円）", _n(line["unit_price"])])
        out.append(["請求", name, "金額（円）", _n(line["amount"])])
    out.append(["請求", "合計（税抜）", "金額（円）", _n(bill["total"])])
    if "tax" in bill:
        out.append(["請求", f"消費税（{bill['tax_rate']}%）", "金額（円）", _n(bill["tax"])])
        out.append(["請求", "合計（税込）", "金額（円）", _n(bill["total_with_tax"])])
    for note in bill.get("notes") or []:
        out.append(["請求", "注記", "", note])
    p = report["postage"]
    for item in p.get("breakdown") or []:
        name = f"{item['direction_label']} {item['carrier']} {item['method']} {item['unit_yen']}円"
        out.append(["郵送費", name, "件数", _n(item["count"])])
        out.append(["郵送費", name, "金額（円）", _n(item["yen"])])
    for key, label in (("send", "発送"), ("return", "返送")):
        out.append(["郵送費", label, "件数", _n(p[key]["count"])])
        out.append(["郵送費", label, "金額（円）", _n(p[key]["yen"])])
    out.append(["郵送費", "合計", "金額（円）", _n(p["total_yen"])])
    q = report["inquiries"]
    out += [
        ["問合せ", "受付", "件数", _n(q["received"])],
        ["問合せ", "回答", "件数", _n(q["answered"])],
        ["問合せ", "月末時点の未完了", "件数", _n(q["open_at_month_end"])],
        ["問合せ", "回答までの時間（営業時間）", "中央値（時間）", _n(q["median_hours"])],
        ["問合せ", "回答までの時間（営業時間）", "最大（時間）", _n(q["max_hours"])],
        ["問合せ", "1営業日（7時間）以内の回答", "割合", _n(q["within_one_day_share"])],
    ]
    plan = report["plan"]
    for r in plan["rows"]:
        name = f"{r['who']} {r['kind']}: {r['what']}"
        out.append([f"{plan['fiscal_year']}年度 想定", name, "世帯数", _n(r["planned_households"])])
        out.append([f"{plan['fiscal_year']}年度 想定", name, "人数", _n(r["planned_people"])])
        out.append([f"{plan['fiscal_year']}年度 実績", name, "世帯数", _n(r["actual_households"])])
        out.append([f"{plan['fiscal_year']}年度 実績", name, "人数", _n(r["actual_people"])])
    for point in report["series"]:
        out.append(["月別収集", point["month"], "役職員（世帯）", _n(point["employee_households"])])
        out.append(["月別収集", point["month"], "外部委員等（人）", _n(point["external_people"])])
    out.append(["その他", "特記事項", "", report["notes"] or ""])
    return out


def to_csv(report: dict, encoding: str = "utf-8-sig") -> bytes:
    """UTF-8 with BOM by default, or CP932 (what Excel on Japanese Windows opens)."""
    if encoding not in ENCODINGS:
        raise monthly.ReportError("CSV の文字コードは utf-8-sig または cp932 です")
    buffer = io.BytesIO()
    writer = CsvWriter(buffer, encoding, ["区分", "項目", "内訳", "値"])
    writer.write_rows(rows(report))
    return buffer.getvalue()


def to_pdf(report: dict, client: str, operator: str) -> bytes:
    chart = svg_data_uri(bar_chart_svg(report["series"]))
    return render_pdf(
        "pdf/monthly_report.html",
        r=report,
        chart=chart,
        client=client,
        operator=operator,
        groups=monthly.GROUP_LABELS,
        channels=monthly.CHANNEL_LABELS,
        reminder_channels=monthly.REMINDER_CHANNEL_LABELS,
        decisions=monthly.DECISION_LABELS,
    )
