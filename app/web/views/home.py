"""The first screen, the favicon and the error pages: nobody is left without a way on.

The first screen lists what the signed-in user may do (their menu, as links with a line on
each), and says why a role of theirs does not count yet (no approved roster entry, no second
factor). Error pages are portal pages with the menu and sign-out, and 「トップページに戻る」
leads to this screen, which every signed-in user may open: no loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, redirect, render_template, send_from_directory, url_for
from flask_appbuilder import IndexView, expose

from app.access import policy
from app.web.identity import current_actor

# What each task is for, in one line (keyed by menu name; FAB's own entries get a label).
TASK_NOTES = {
    policy.MENU_PEOPLE: "職員番号・氏名・カナ・生年月日・個人番号で人物を探します。",
    policy.MENU_INTAKE: "提出された内容を確認します。",
    policy.MENU_CAMPAIGNS: "収集キャンペーンを作成・送付・進捗確認します。",
    policy.MENU_VERIFICATION: "提出内容の確認（受理・不備）を行います。",
    policy.MENU_ROSTER: "情報取扱者名簿を確認します。",
    policy.MENU_ROSTER_CHANGES: "名簿への追加・変更・削除を申請します（発注者の承認が必要です）。",
    policy.MENU_ACCOUNT_CHANGES: "アカウントの作成・権限変更・再設定を申請します（発注者の承認が必要です）。",
    policy.MENU_KEYS: "暗号鍵の状態確認と鍵の更新（ローテーション）を行います。",
    policy.MENU_USERS: "ログインアカウントの一覧・無効化・ロック解除を行います。",
    policy.MENU_UNIT_PRICES: "収集料金の単価を登録します。",
    policy.MENU_POSTAGE_RATES: "運送・郵送料金表を登録します。",
    policy.MENU_POSTAGE_LEDGER: "郵送費を記録します。",
    policy.MENU_AUDIT: "監査ログを期間・操作者で絞り込んで確認します。",
    policy.MENU_AUDIT_VERIFY: "監査ログが改ざんされていないことを検証します。",
    policy.MENU_HANDLING_CHART: "情報管理体制図を作成・確認します。",
    policy.MENU_REGISTER: "特定個人情報の取扱状況（保管件数など）を確認します。",
    policy.MENU_REPORTS: "月次の利用実績報告書を作成・確認します。",
}
# FAB's own menu entries, in Japanese.
TASK_LABELS = {policy.MENU_USERS: "アカウント一覧", policy.MENU_CATEGORY_ADMIN: "システム管理"}


@dataclass(frozen=True)
class Task:
    category: str
    label: str
    url: str
    note: str


def available_tasks() -> list[Task]:
    """Every menu entry the signed-in user may open, in menu order."""
    sm = current_app.appbuilder.sm
    tasks = []
    for item in current_app.appbuilder.menu.get_list():
        children = item.childs or [item]
        category = TASK_LABELS.get(item.name, str(item.label or item.name)) if item.childs else ""
        for child in children:
            if child.name == "-" or not sm.has_access("menu_access", child.name):
                continue
            url = child.get_url()
            if not url:
                continue
            label = TASK_LABELS.get(child.name, str(child.label or child.name))
            tasks.append(Task(category, label, url, TASK_NOTES.get(child.name, "")))
    return tasks


def signed_in() -> bool:
    user = getattr(g, "user", None)
    return bool(user is not None and getattr(user, "is_authenticated", False))


class HomeView(IndexView):
    index_template = "mynumber/index.html"

    @expose("/")
    def index(self):
        # The dashboard is the landing page of whoever may see it.
        if policy.allows(current_actor(), "can_index", "Dashboard"):
            return redirect(url_for("DashboardView.index"))
        actor = current_actor()
        return self.render_template(
            self.index_template,
            tasks=available_tasks() if signed_in() else [],
            reasons=policy.withheld_reasons(actor) if signed_in() else [],
            role_labels=[policy.ROLE_LABELS.get(r, r) for r in actor.roles],
        )

    @expose("/favicon.ico")
    def favicon(self):
        """Browsers ask for it at the root whatever the page says."""
        return send_from_directory(
            current_app.static_folder + "/mynumber", "favicon.ico", max_age=86400
        )


def render_error_page(code: int, message: str) -> str:
    """A portal page (menu, sign-out, the reason a role does not count) for a refusal or a
    missing page; the caller falls back to the plain page when this cannot be rendered."""
    actor = current_actor()
    return render_template(
        "mynumber/error_page.html",
        appbuilder=current_app.appbuilder,
        base_template=current_app.appbuilder.base_template,
        code=code,
        message=message,
        reasons=policy.withheld_reasons(actor) if signed_in() and code == 403 else [],
        signed_in=signed_in(),
    )
