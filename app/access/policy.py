"""Who may do what: the one table of permissions, and the rules around it.

Permissions are ``(permission, view)`` pairs as Flask-AppBuilder names them, kept here in code
rather than editable in the database: a SystemAdmin manages accounts but cannot widen a role.
On top of the table, three rules apply to every check, in views, CLI and services alike:

1. Operator and ClientStaff permissions count only while the account is linked to an approved
   entry of the 情報取扱者名簿 (roster), and only after the TOTP second factor.
2. An account that holds SystemAdmin never gets a permission that touches personal data, even
   if someone also gave it another role (separation of duties).
3. An Operator may reveal a number only for a person whose case they hold: a case they
   claimed in a campaign a ClientStaff user assigned them to (``app.access.assignments``).

Imports, exports and bulk 照合 follow the same table: only ClientStaff import, export,
bulk-match and edit records (``can_import``, ``can_export``, ``can_match``, ``can_edit`` on
People). An import answers, line by line, which numbers are already stored for someone else:
told to an Operator, who holds no case and sees the last four digits of anyone's number, that
answer is an oracle for every stored number; ClientStaff may reveal numbers anyway. Both keep
the client's CSV layouts (``Layouts``). The server's own command line acts as
a ``ShellActor``: whoever has that shell already holds the key ring, so it may import and
export, and every use is audited as ``cli:<os user>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.audit import trail
from app.audit.labels import ROLE_LABELS  # the roles in words: one table, the log's too
from app.core.actor import Actor

SYSTEM_ADMIN = "SystemAdmin"
OPERATOR = "Operator"
CLIENT_STAFF = "ClientStaff"
AUDITOR = "Auditor"
ROLES = (SYSTEM_ADMIN, OPERATOR, CLIENT_STAFF, AUDITOR)

ROSTER_REQUIRED = frozenset({OPERATOR, CLIENT_STAFF})
# Every role signs in with a second factor: an administrator or auditor account behind a
# password alone would be the easiest way in (and SystemAdmin manages the accounts).
MFA_REQUIRED = frozenset(ROLES)

# Views (FAB permission view names) whose data is personal: never for a SystemAdmin.
# Retention and Disposal list people by name; ReturnArchive exports everyone. The deletion
# certificates name people by id only, so Auditors may read them.
PERSONAL_DATA_VIEWS = frozenset(
    {
        "People",
        "Numbers",
        "Intake",
        "Inquiries",
        # Collection operations: target lists, letters, scans, keyed numbers.
        "Campaigns",
        "Mailings",
        "PaperIntake",
        "Verification",
        # Storage lifecycle.
        "Retention",
        "Disposal",
        "ReturnArchive",
    }
)

# Menu names (FAB registers "menu_access" on these).
MENU_PEOPLE = "人物検索"
MENU_CATEGORY_PEOPLE = "マイナンバー"
MENU_AUDIT = "監査ログ"
MENU_AUDIT_VERIFY = "監査チェーン検証"
MENU_CATEGORY_AUDIT = "監査"
MENU_ROSTER = "情報取扱者名簿"
MENU_ROSTER_CHANGES = "名簿の変更申請"
MENU_CATEGORY_ROSTER = "情報管理体制"
MENU_CATEGORY_BILLING = "請求・郵送費"
MENU_UNIT_PRICES = "収集料金単価表"
MENU_POSTAGE_RATES = "運送・郵送料金表"
MENU_POSTAGE_LEDGER = "郵送費台帳"
MENU_KEYS = "鍵管理"
MENU_USERS = "List Users"
MENU_RETENTION = "保管期限"
MENU_DISPOSAL = "廃棄申請"
MENU_CERTIFICATES = "削除証明書"
MENU_RETURN = "返却データ"
MENU_CATEGORY_LIFECYCLE = "保管・廃棄"
MENU_CATEGORY_ADMIN = "Security"  # FAB's own category for its user screens
MENU_INTAKE = "受付一覧"
MENU_INQUIRIES = "お問い合わせ"
MENU_CATEGORY_INTAKE = "収集"
MENU_CAMPAIGNS = "収集キャンペーン"
MENU_VERIFICATION = "確認キュー"
MENU_PAPER = "郵送受付"
MENU_MAILINGS = "送付・印刷"
# Menus that lead to personal data: hidden from a SystemAdmin together with the views.
MENU_IMPORT = "CSV取込"
MENU_EXPORT = "CSV出力"
MENU_MATCH = "一括照合"
MENU_LAYOUTS = "CSV様式"
MENU_RECORD_ADD = "人物の登録"
PERSONAL_DATA_MENUS = frozenset(
    {
        MENU_PEOPLE,
        MENU_CATEGORY_PEOPLE,
        MENU_INTAKE,
        MENU_INQUIRIES,
        MENU_CATEGORY_INTAKE,
        MENU_IMPORT,
        MENU_EXPORT,
        MENU_MATCH,
        MENU_RECORD_ADD,
        MENU_CAMPAIGNS,
        MENU_VERIFICATION,
        MENU_PAPER,
        MENU_MAILINGS,
        MENU_RETENTION,
        MENU_DISPOSAL,
        MENU_RETURN,
    }
)

# Campaigns: the client orders a collection (spec 5.2-6: it hands over the target list and
# its wording, 5.2-1) and follows it at any time (5.2-5). Both sides see campaigns and their
# letters; only the client's staff create one, upload its target list and assign the
# Operators who work it (担当事務取扱担当者, app.access.assignments): an Operator never decides
# which people's numbers reach them.
_CAMPAIGN_SHARED = [
    ("can_list", "Campaigns"),
    ("can_show", "Campaigns"),
    ("can_letters", "Campaigns"),
    ("can_export", "Campaigns"),
    ("menu_access", MENU_CAMPAIGNS),
    ("menu_access", MENU_CATEGORY_INTAKE),
]
_CAMPAIGN_ORDER = [
    ("can_add", "Campaigns"),
    ("can_upload", "Campaigns"),
    ("can_assign", "Campaigns"),
]
# The collection work itself is the operator's alone (spec 5.2-2: 発注者を介さず直接収集).
_COLLECTION_WORK = [
    ("can_send", "Campaigns"),
    ("can_print", "Campaigns"),
    ("can_list", "Mailings"),
    ("can_retry", "Mailings"),
    ("can_bounce", "Mailings"),
    ("can_print", "Mailings"),
    ("can_post", "Mailings"),
    ("can_list", "PaperIntake"),
    ("can_add", "PaperIntake"),
    ("can_scan", "PaperIntake"),
    ("can_key", "PaperIntake"),
    ("can_finish", "PaperIntake"),
    ("can_return", "PaperIntake"),
    ("can_list", "Verification"),
    ("can_claim", "Verification"),
    ("can_decide", "Verification"),
    ("menu_access", MENU_VERIFICATION),
    ("menu_access", MENU_PAPER),
    ("menu_access", MENU_MAILINGS),
]

_FAB_USERS = [
    ("can_list", "UserDBModelView"),
    ("can_show", "UserDBModelView"),
    ("can_add", "UserDBModelView"),
    ("can_edit", "UserDBModelView"),
    ("can_userinfo", "UserDBModelView"),
    ("resetpasswords", "UserDBModelView"),
    ("can_this_form_get", "ResetPasswordView"),
    ("can_this_form_post", "ResetPasswordView"),
]
_SELF_SERVICE = [
    ("can_userinfo", "UserDBModelView"),
    ("resetmypassword", "UserDBModelView"),
    ("can_this_form_get", "ResetMyPasswordView"),
    ("can_this_form_post", "ResetMyPasswordView"),
]

ROLE_PERMISSIONS: dict[str, frozenset[tuple[str, str]]] = {
    SYSTEM_ADMIN: frozenset(
        _FAB_USERS
        + _SELF_SERVICE
        + [
            ("can_list", "Roster"),
            ("can_show", "Roster"),
            ("can_list", "RosterChange"),
            ("can_propose", "RosterChange"),
            ("can_rotate", "Keys"),
            ("menu_access", MENU_USERS),
            ("menu_access", MENU_CATEGORY_ADMIN),
            ("menu_access", MENU_ROSTER),
            ("menu_access", MENU_ROSTER_CHANGES),
            ("menu_access", MENU_CATEGORY_ROSTER),
            ("menu_access", MENU_KEYS),
            ("can_list", "UnitPrice"),
            ("can_add", "UnitPrice"),
            ("menu_access", MENU_UNIT_PRICES),
            ("menu_access", MENU_CATEGORY_BILLING),
        ]
    ),
    OPERATOR: frozenset(
        _SELF_SERVICE
        + [
            ("can_search", "People"),
            ("can_show", "People"),
            ("can_reveal", "People"),  # only for a person whose case they hold (rule 3)
            ("can_list", "Postage"),
            ("can_add", "Postage"),
            ("can_list", "UnitPrice"),
            ("menu_access", MENU_PEOPLE),
            ("menu_access", MENU_CATEGORY_PEOPLE),
            ("menu_access", MENU_POSTAGE_RATES),
            ("menu_access", MENU_POSTAGE_LEDGER),
            ("menu_access", MENU_UNIT_PRICES),
            ("menu_access", MENU_CATEGORY_BILLING),
            # Intake: the operator collects directly (spec 5.2-2); the client does not see
            # what a subject submitted, only the request's status.
            ("can_list", "Intake"),
            ("can_open", "Intake"),  # unseal a submission of a case they hold (audited)
            ("can_decide", "Intake"),  # 確認中 / 不備 / 完了, unlock a locked link
            ("can_list", "Inquiries"),
            ("can_show", "Inquiries"),
            ("can_edit", "Inquiries"),
            ("menu_access", MENU_INTAKE),
            ("menu_access", MENU_INQUIRIES),
            ("menu_access", MENU_CATEGORY_INTAKE),
            ("can_list", "Layouts"),
            ("can_edit", "Layouts"),
            ("menu_access", MENU_PEOPLE),
            ("menu_access", MENU_CATEGORY_PEOPLE),
            ("menu_access", MENU_LAYOUTS),
            # Storage lifecycle: request and carry out disposals, never approve them.
            ("can_list", "Retention"),
            ("can_list", "Disposal"),
            ("can_show", "Disposal"),
            ("can_request", "Disposal"),
            ("can_execute", "Disposal"),
            ("menu_access", MENU_RETENTION),
            ("menu_access", MENU_DISPOSAL),
            ("menu_access", MENU_CATEGORY_LIFECYCLE),
        ]
        + _CAMPAIGN_SHARED
        + _COLLECTION_WORK
    ),
    CLIENT_STAFF: frozenset(
        _SELF_SERVICE
        + [
            ("can_search", "People"),
            ("can_show", "People"),
            ("can_reveal", "People"),
            ("can_list", "Roster"),
            ("can_show", "Roster"),
            ("can_list", "RosterChange"),
            ("can_approve", "RosterChange"),
            ("can_list", "UnitPrice"),
            ("can_list", "Postage"),
            ("menu_access", MENU_UNIT_PRICES),
            ("menu_access", MENU_POSTAGE_RATES),
            ("menu_access", MENU_POSTAGE_LEDGER),
            ("menu_access", MENU_CATEGORY_BILLING),
            ("menu_access", MENU_PEOPLE),
            ("menu_access", MENU_CATEGORY_PEOPLE),
            ("menu_access", MENU_ROSTER),
            ("menu_access", MENU_ROSTER_CHANGES),
            ("menu_access", MENU_CATEGORY_ROSTER),
            ("can_edit", "People"),
            ("can_import", "Numbers"),
            ("can_export", "Numbers"),
            ("can_match", "Numbers"),
            ("can_list", "Layouts"),
            ("can_edit", "Layouts"),
            ("menu_access", MENU_PEOPLE),
            ("menu_access", MENU_CATEGORY_PEOPLE),
            ("menu_access", MENU_IMPORT),
            ("menu_access", MENU_EXPORT),
            ("menu_access", MENU_MATCH),
            ("menu_access", MENU_LAYOUTS),
            ("menu_access", MENU_RECORD_ADD),
            # Storage lifecycle: approve disposals (someone other than the requester, with a
            # fresh TOTP code), receive certificates and the return archive.
            ("can_list", "Retention"),
            ("can_list", "Disposal"),
            ("can_show", "Disposal"),
            ("can_request", "Disposal"),
            ("can_approve", "Disposal"),
            ("can_execute", "Disposal"),
            ("can_list", "DeletionCertificate"),
            ("can_download", "DeletionCertificate"),
            ("can_list", "ReturnArchive"),
            ("can_export", "ReturnArchive"),
            ("can_download", "ReturnArchive"),
            ("menu_access", MENU_RETENTION),
            ("menu_access", MENU_DISPOSAL),
            ("menu_access", MENU_CERTIFICATES),
            ("menu_access", MENU_RETURN),
            ("menu_access", MENU_CATEGORY_LIFECYCLE),
        ]
        + _CAMPAIGN_SHARED
        + _CAMPAIGN_ORDER
    ),
    AUDITOR: frozenset(
        _SELF_SERVICE
        + [
            ("can_list", "AuditLog"),
            ("can_show", "AuditLog"),
            ("can_verify", "AuditLog"),
            ("can_list", "Roster"),
            ("can_show", "Roster"),
            ("can_list", "RosterChange"),
            ("can_list", "UnitPrice"),
            ("can_list", "Postage"),
            ("menu_access", MENU_UNIT_PRICES),
            ("menu_access", MENU_POSTAGE_RATES),
            ("menu_access", MENU_POSTAGE_LEDGER),
            ("menu_access", MENU_CATEGORY_BILLING),
            ("menu_access", MENU_AUDIT),
            ("menu_access", MENU_AUDIT_VERIFY),
            ("menu_access", MENU_CATEGORY_AUDIT),
            ("menu_access", MENU_ROSTER),
            ("menu_access", MENU_ROSTER_CHANGES),
            ("menu_access", MENU_CATEGORY_ROSTER),
            ("can_list", "DeletionCertificate"),
            ("can_download", "DeletionCertificate"),
            ("menu_access", MENU_CERTIFICATES),
            ("menu_access", MENU_CATEGORY_LIFECYCLE),
        ]
    ),
}


# -- monthly usage report and dashboard ---------------------------
# Counts and yen only, never personal data. The operator writes, generates and sends the
# report; the client and the auditor read it; a SystemAdmin sees the list of months with due
# dates and delivery status (no figures: downloading needs can_download). The dashboard is the
# landing page of the client's staff and the operators.
MENU_REPORTS = "利用実績報告書"
MENU_PLANNED = "想定人数"
MENU_DASHBOARD = "ダッシュボード"
MENU_CATEGORY_REPORTS = "報告"
_REPORTS_MENU = [("menu_access", MENU_REPORTS), ("menu_access", MENU_CATEGORY_REPORTS)]
_REPORTS_READ = [
    ("can_list", "Reports"),
    ("can_download", "Reports"),
    ("can_list", "PlannedVolume"),
    ("menu_access", MENU_PLANNED),
    *_REPORTS_MENU,
]
_DASHBOARD = [("can_index", "Dashboard"), ("menu_access", MENU_DASHBOARD)]
ROLE_PERMISSIONS[OPERATOR] |= frozenset(
    _REPORTS_READ
    + _DASHBOARD
    + [
        ("can_notes", "Reports"),
        ("can_generate", "Reports"),
        ("can_send", "Reports"),
        ("can_add", "PlannedVolume"),
        ("can_edit", "PlannedVolume"),
    ]
)
ROLE_PERMISSIONS[CLIENT_STAFF] |= frozenset(_REPORTS_READ + _DASHBOARD)
ROLE_PERMISSIONS[AUDITOR] |= frozenset(_REPORTS_READ)
ROLE_PERMISSIONS[SYSTEM_ADMIN] |= frozenset([("can_list", "Reports"), *_REPORTS_MENU])

# -- inquiry desk, roster exports, 情報管理体制図, 取扱状況 register ----------------
# Operators work the desk (Inquiries, above); ClientStaff file their own inquiries from the
# portal and read the answers (ClientInquiries). The roster, the 情報管理体制図 and the
# register name staff and data sets, never a subject: ClientStaff, Auditors and the
# SystemAdmin download them; the operator side (SystemAdmin, Operator) edits the chart and a
# ClientStaff user other than its author approves it, as with roster changes.
MENU_CLIENT_INQUIRIES = "窓口への問合せ"
MENU_HANDLING_CHART = "情報管理体制図"
MENU_REGISTER = "取扱状況"
PERSONAL_DATA_VIEWS = PERSONAL_DATA_VIEWS | {"ClientInquiries"}
PERSONAL_DATA_MENUS = PERSONAL_DATA_MENUS | {MENU_CLIENT_INQUIRIES}
_GOVERNANCE_READ = {
    ("can_download", "Roster"),
    ("can_list", "HandlingChart"),
    ("can_download", "HandlingChart"),
    ("can_list", "Register"),
    ("can_download", "Register"),
    ("menu_access", MENU_HANDLING_CHART),
    ("menu_access", MENU_REGISTER),
    ("menu_access", MENU_CATEGORY_ROSTER),
}
ROLE_PERMISSIONS[SYSTEM_ADMIN] |= _GOVERNANCE_READ | {("can_propose", "HandlingChart")}
ROLE_PERMISSIONS[OPERATOR] |= {
    ("can_list", "HandlingChart"),
    ("can_propose", "HandlingChart"),
    ("menu_access", MENU_HANDLING_CHART),
    ("menu_access", MENU_CATEGORY_ROSTER),
}
ROLE_PERMISSIONS[CLIENT_STAFF] |= _GOVERNANCE_READ | {
    ("can_approve", "HandlingChart"),
    ("can_list", "ClientInquiries"),
    ("can_show", "ClientInquiries"),
    ("can_add", "ClientInquiries"),
    ("menu_access", MENU_CLIENT_INQUIRIES),
    ("menu_access", MENU_CATEGORY_INTAKE),
}
ROLE_PERMISSIONS[AUDITOR] |= _GOVERNANCE_READ

# Accounts that can reach personal data change only with a ClientStaff user's approval
# (app.access.accounts): the SystemAdmin requests, ClientStaff approve with TOTP, Auditors read.
MENU_ACCOUNT_CHANGES = "アカウントの変更申請"
_ACCOUNT_CHANGES_READ = {
    ("can_list", "AccountChange"),
    ("menu_access", MENU_ACCOUNT_CHANGES),
    ("menu_access", MENU_CATEGORY_ROSTER),
}
ROLE_PERMISSIONS[SYSTEM_ADMIN] |= _ACCOUNT_CHANGES_READ | {("can_propose", "AccountChange")}
ROLE_PERMISSIONS[CLIENT_STAFF] |= _ACCOUNT_CHANGES_READ | {("can_approve", "AccountChange")}
ROLE_PERMISSIONS[AUDITOR] |= _ACCOUNT_CHANGES_READ

# What the server's own command line may do (see ShellActor).
SHELL_PERMISSIONS = frozenset(
    {("can_import", "Numbers"), ("can_export", "Numbers"), ("can_match", "Numbers")}
    # Storage lifecycle: carry out a disposal the client approved (never request or approve
    # one), write its certificate, write the return archive.
    | {
        ("can_execute", "Disposal"),
        ("can_download", "DeletionCertificate"),
        ("can_export", "ReturnArchive"),
    }
    # The monthly usage report: generate, send and write it out by hand.
    | {("can_generate", "Reports"), ("can_send", "Reports"), ("can_download", "Reports")}
    # A collection order the client handed over on paper or by file, entered on the server
    # (``mynumber campaign create / targets``): never an Operator's own order. Assigning the
    # Operators who work it stays with the client's staff at the portal.
    | {("can_add", "Campaigns"), ("can_upload", "Campaigns")}
)


@dataclass(frozen=True)
class ShellActor(Actor):
    """The ``mynumber`` command on the server: trusted by type, never by a name or a role,
    so no portal account can become one."""


class PermissionDenied(Exception):
    """Raised with a Japanese message the user may read."""


def effective_roles(actor: Actor) -> set[str]:
    """The roles whose permissions count right now, after the roster and TOTP rules."""
    roles = set(actor.roles) & set(ROLE_PERMISSIONS)
    if not actor.roster_approved:
        roles -= ROSTER_REQUIRED
    if not actor.mfa:
        roles -= MFA_REQUIRED
    return roles


def withheld_reasons(actor: Actor) -> list[str]:
    """Why roles the account holds do not count right now (Japanese, for the user): the
    screens they would open are then refused, and the user must know what to ask for."""
    roles = set(actor.roles) & set(ROLE_PERMISSIONS)
    reasons = []
    unapproved = sorted(roles & ROSTER_REQUIRED) if not actor.roster_approved else []
    if unapproved:
        labels = "・".join(ROLE_LABELS[r] for r in unapproved)
        reasons.append(
            f"このアカウント（{labels}）は、承認済みの情報取扱者名簿の登録に結び付いていないため、"
            "個人番号を扱う画面を使えません。発注者の担当者に、名簿への登録（または変更）と"
            "その承認、アカウントとの結び付けを依頼してください。"
        )
    if not actor.mfa and roles & MFA_REQUIRED:
        reasons.append(
            "二要素認証（確認コード）でのログインが済んでいないため、使える画面が限られています。"
            "一度ログアウトし、確認コードを入力してログインし直してください。"
        )
    return reasons


def permissions(actor: Actor) -> set[tuple[str, str]]:
    """Every ``(permission, view)`` pair the actor holds now."""
    result: set[tuple[str, str]] = set()
    for role in effective_roles(actor):
        result |= ROLE_PERMISSIONS[role]
    if isinstance(actor, ShellActor) and actor.user_id is None and not actor.roles:
        result |= SHELL_PERMISSIONS
    if SYSTEM_ADMIN in actor.roles:
        result = {p for p in result if p[1] not in PERSONAL_DATA_VIEWS}
        result -= {("menu_access", menu) for menu in PERSONAL_DATA_MENUS}
    return result


def allows(actor: Actor, permission: str, view: str) -> bool:
    return (permission, view) in permissions(actor)


def require(actor: Actor, permission: str, view: str) -> None:
    """Raise PermissionDenied unless the actor holds the permission now."""
    if allows(actor, permission, view):
        return
    if SYSTEM_ADMIN in actor.roles and view in PERSONAL_DATA_VIEWS:
        raise PermissionDenied("システム管理者は個人番号・個人情報にアクセスできません")
    if set(actor.roles) & ROSTER_REQUIRED and not actor.roster_approved:
        raise PermissionDenied("承認済みの情報取扱者名簿に登録されていないため、操作できません")
    if set(actor.roles) & MFA_REQUIRED and not actor.mfa:
        raise PermissionDenied("二要素認証（TOTP）を完了してください")
    raise PermissionDenied("この操作を行う権限がありません")


def require_audited(
    session,
    actor: Actor,
    permission: str,
    view: str,
    action: str,
    *,
    object_type: str,
    object_ids: list | None = None,
) -> None:
    """``require``, with a refusal written to the audit log first (committed): someone trying
    what their role may not do — an Operator placing an order or importing numbers — is worth
    a trace, not only a message."""
    try:
        require(actor, permission, view)
    except PermissionDenied as exc:
        trail.record(
            session,
            actor,
            action,
            object_type=object_type,
            object_ids=object_ids or [],
            outcome="denied",
            details={"reason": str(exc)},
            commit=True,
        )
        raise
