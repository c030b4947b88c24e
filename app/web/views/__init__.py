"""Admin portal screens (Flask-AppBuilder), one module per area. Thin: every decision is
in a service module; views parse input, call the service, and render.

- ``people``: 照合 (search, person, reveal)
- ``audit``: audit log and chain verification
- ``admin``: roster, users, keys
- ``billing``: unit prices, carrier fee table, postage ledger
- ``intake``: received submissions (audited unseal), deficiency, unlocking a locked link
- ``io``: CSV import (preview, confirm), export, bulk 照合, layout editor
- ``records``: adding and editing people, households, names, numbers
- ``collection``: campaigns, deliveries and print batches, paper intake, verification queue
  (a package: one module per workflow)
- ``lifecycle``: retention, disposal requests, deletion certificates, the return archive
- ``reports``: the monthly usage report, planned volumes, the dashboard
- ``home``: the first screen (the user's tasks), the favicon, the error pages
- ``desk``: the inquiry desk (Operators) and the client's own inquiries
- ``governance``: roster downloads, 情報管理体制図, 取扱状況 register
"""

from __future__ import annotations

from app.access import policy
from app.web.views.admin import AccountChangeView, KeysView, RosterChangeView, RosterView
from app.web.views.audit import AuditLogView, AuditVerifyView
from app.web.views.billing import PostageEntryView, PostageRateView, UnitPriceView
from app.web.views.collection.campaigns import CampaignView
from app.web.views.collection.mailings import MailingView
from app.web.views.collection.paper import PaperView
from app.web.views.collection.verification import VerificationView
from app.web.views.desk import ClientInquiryView, DeskView
from app.web.views.governance import HandlingChartView, RegisterView, RosterExportView
from app.web.views.home import HomeView as HomeView  # the index view, built by the factory
from app.web.views.intake import IntakeView
from app.web.views.io import ExportView, ImportView, LayoutView, MatchView
from app.web.views.lifecycle import CertificateView, DisposalView, RetentionView, ReturnArchiveView
from app.web.views.people import PeopleView
from app.web.views.records import RecordsView
from app.web.views.reports import DashboardView, PlannedVolumeView, ReportView


def register(appbuilder) -> None:
    """Add every screen and menu entry (menu names match app.access.policy)."""
    appbuilder.add_view(
        PeopleView, policy.MENU_PEOPLE, icon="fa-search", category=policy.MENU_CATEGORY_PEOPLE
    )
    for view, menu, icon in (
        (MatchView, policy.MENU_MATCH, "fa-users"),
        (ExportView, policy.MENU_EXPORT, "fa-download"),
        (ImportView, policy.MENU_IMPORT, "fa-upload"),
        (RecordsView, policy.MENU_RECORD_ADD, "fa-user-plus"),
        (LayoutView, policy.MENU_LAYOUTS, "fa-table"),
    ):
        appbuilder.add_view(view, menu, icon=icon, category=policy.MENU_CATEGORY_PEOPLE)
    appbuilder.add_view(
        IntakeView, policy.MENU_INTAKE, icon="fa-inbox", category=policy.MENU_CATEGORY_INTAKE
    )
    for view, name, icon in (
        (CampaignView, policy.MENU_CAMPAIGNS, "fa-bullhorn"),
        (VerificationView, policy.MENU_VERIFICATION, "fa-check-square-o"),
        (PaperView, policy.MENU_PAPER, "fa-envelope-open"),
        (MailingView, policy.MENU_MAILINGS, "fa-print"),
    ):
        appbuilder.add_view(view, name, icon=icon, category=policy.MENU_CATEGORY_INTAKE)
    appbuilder.add_view(
        AuditLogView, policy.MENU_AUDIT, icon="fa-list", category=policy.MENU_CATEGORY_AUDIT
    )
    appbuilder.add_view(
        AuditVerifyView,
        policy.MENU_AUDIT_VERIFY,
        icon="fa-check",
        category=policy.MENU_CATEGORY_AUDIT,
    )
    appbuilder.add_view(
        RosterView, policy.MENU_ROSTER, icon="fa-id-card", category=policy.MENU_CATEGORY_ROSTER
    )
    appbuilder.add_view(
        RosterChangeView,
        policy.MENU_ROSTER_CHANGES,
        icon="fa-pencil",
        category=policy.MENU_CATEGORY_ROSTER,
    )
    appbuilder.add_view(
        AccountChangeView,
        policy.MENU_ACCOUNT_CHANGES,
        icon="fa-user-plus",
        category=policy.MENU_CATEGORY_ROSTER,
    )
    appbuilder.add_view(
        KeysView, policy.MENU_KEYS, icon="fa-key", category=policy.MENU_CATEGORY_ADMIN
    )
    for view, name, icon in (
        (UnitPriceView, policy.MENU_UNIT_PRICES, "fa-yen"),
        (PostageRateView, policy.MENU_POSTAGE_RATES, "fa-table"),
        (PostageEntryView, policy.MENU_POSTAGE_LEDGER, "fa-envelope"),
    ):
        appbuilder.add_view(view, name, icon=icon, category=policy.MENU_CATEGORY_BILLING)
    for view, name, icon in (
        (RetentionView, policy.MENU_RETENTION, "fa-calendar"),
        (DisposalView, policy.MENU_DISPOSAL, "fa-trash"),
        (CertificateView, policy.MENU_CERTIFICATES, "fa-certificate"),
        (ReturnArchiveView, policy.MENU_RETURN, "fa-archive"),
    ):
        appbuilder.add_view(view, name, icon=icon, category=policy.MENU_CATEGORY_LIFECYCLE)
    # -- monthly usage report, planned volumes, dashboard ------------------------------------
    appbuilder.add_view(DashboardView, policy.MENU_DASHBOARD, icon="fa-dashboard")
    for view, name, icon in (
        (ReportView, policy.MENU_REPORTS, "fa-file-text"),
        (PlannedVolumeView, policy.MENU_PLANNED, "fa-bar-chart"),
    ):
        appbuilder.add_view(view, name, icon=icon, category=policy.MENU_CATEGORY_REPORTS)

    # -- inquiry desk ----------------------------------------------------------------------
    appbuilder.add_view(
        DeskView, policy.MENU_INQUIRIES, icon="fa-envelope", category=policy.MENU_CATEGORY_INTAKE
    )
    appbuilder.add_view(
        ClientInquiryView,
        policy.MENU_CLIENT_INQUIRIES,
        icon="fa-question-circle",
        category=policy.MENU_CATEGORY_INTAKE,
    )
    # -- 情報管理体制図, roster downloads, 取扱状況 register -----------------------------------
    appbuilder.add_view_no_menu(RosterExportView)
    for view, name, icon in (
        (HandlingChartView, policy.MENU_HANDLING_CHART, "fa-sitemap"),
        (RegisterView, policy.MENU_REGISTER, "fa-database"),
    ):
        appbuilder.add_view(view, name, icon=icon, category=policy.MENU_CATEGORY_ROSTER)
