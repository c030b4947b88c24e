"""Every setting of MyNumber Vault, read from the environment.

The defaults are the embedded mode: a SQLite file and the key ring under ``MYNUMBER_HOME``
(``./instance``), jobs run inline, mail written to ``instance/outbox/``. Setting
``DATABASE_URL``, ``REDIS_URL`` or ``SMTP_URL`` switches to the real service.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

from wtforms.validators import ValidationError

from app.core.fields import header_problem


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def instance_home() -> Path:
    """The folder that holds the embedded database, the key ring and the outbox."""
    return Path(os.environ.get("MYNUMBER_HOME", "instance")).resolve()


def database_url(home: Path) -> str:
    """``DATABASE_URL`` with the psycopg 3 driver forced, or the embedded SQLite file."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{home / 'mynumber.db'}"
    # psycopg 3 is the only PostgreSQL driver we ship; accept the common spellings.
    return re.sub(r"^postgres(ql)?(\+psycopg2)?://", "postgresql+psycopg://", url)


def _secret_key(home: Path, env: str = "SECRET_KEY", filename: str = "secret_key") -> str:
    """Session-signing key: from the environment, else a 0600 file made once per instance."""
    key = os.environ.get(env)
    if key:
        return key
    path = home / filename
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def password_complexity(password: str) -> None:
    """Password policy: 12+ characters drawn from at least three of four character classes."""
    classes = [
        re.search(r"[a-z]", password),
        re.search(r"[A-Z]", password),
        re.search(r"[0-9]", password),
        re.search(r"[^a-zA-Z0-9]", password),
    ]
    if len(password) < 12 or sum(1 for c in classes if c) < 3:
        raise ValidationError(
            "パスワードは12文字以上で、英大文字・英小文字・数字・記号のうち3種類以上を含めてください。"
        )


PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Every file and folder this process creates is for the service account alone (0600,
    0700): the SQLite database and its -wal/-shm/-journal files, logs, outbox messages,
    exports. systemd sets ``UMask=0077`` for the services, but ``mynumber init`` or any
    command an administrator runs from a shell would otherwise inherit the shell's 022 and
    leave the database readable by every local user."""
    os.umask(PRIVATE_UMASK)


# Who the instance speaks for: printed on every letter and in every e-mail to a subject.
# ``mynumber init`` asks for them (or takes them from the environment) and keeps them in the
# instance's settings file; sending and printing refuse while one is missing, so no
# placeholder (「【発注者】」, a made-up phone number) ever reaches a subject.
IDENTITY: tuple[tuple[str, str, str], ...] = (
    # (config key, environment variable, label)
    ("CLIENT_NAME", "MYNUMBER_CLIENT_NAME", "発注者名"),
    ("OPERATOR_NAME", "MYNUMBER_OPERATOR_NAME", "受注者名"),
    ("MAIL_FROM", "MYNUMBER_MAIL_FROM", "送信元メールアドレス"),
    ("DESK_PHONE", "MYNUMBER_DESK_PHONE", "問い合わせ窓口の電話番号"),
    ("DESK_EMAIL", "MYNUMBER_DESK_EMAIL", "問い合わせ窓口のメールアドレス"),
)
INSTANCE_SETTINGS_FILE = "settings.json"
DEFAULT_FORM_PORT = 8001


def instance_settings(home: Path) -> dict[str, str]:
    """The settings ``mynumber init`` (who we are) and ``mynumber run`` (the form's address)
    stored in the instance folder, keyed by environment variable. The environment wins."""
    path = home / INSTANCE_SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"設定ファイル {path} を読めません（{type(exc).__name__}）") from None
    return (
        {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
        if isinstance(data, dict)
        else {}
    )


def save_instance_settings(home: Path, values: dict[str, str]) -> Path:
    """Merge ``values`` (environment-variable names) into the instance's settings file,
    written whole (0600, temporary file then rename) so a crash never leaves half a file."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    merged = {**instance_settings(home), **values}
    path = home / INSTANCE_SETTINGS_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, ensure_ascii=False, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def missing_identity(config) -> list[str]:
    """The labels (with their variable) of who-we-are settings still unset."""
    return [
        f"{label}（{env}）" for key, env, label in IDENTITY if not (config.get(key) or "").strip()
    ]


# What the first build printed before these were asked for: never accepted as a value.
PLACEHOLDERS = frozenset(
    {
        "発注者",
        "受注者",
        "【発注者】",
        "【受注者】",
        "mynumber-vault@localhost",
        "mynumber-desk@example.jp",
        "0120-000-000",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9()\- ]{6,20}$")


def identity_problem(key: str, value: str | None) -> str | None:
    """Why ``value`` cannot be the who-we-are setting ``key``, in Japanese (None: fine)."""
    label = next(lbl for k, _env, lbl in IDENTITY if k == key)
    text = (value or "").strip()
    if not text:
        return f"{label}: 入力してください"
    problem = header_problem(label, text)
    if problem:
        return problem
    if text in PLACEHOLDERS:
        return f"{label}: 「{text}」は仮の値です。実際の値を入力してください"
    if key in ("MAIL_FROM", "DESK_EMAIL") and (
        not _EMAIL.match(text) or text.lower().endswith("@localhost")
    ):
        return f"{label}: メールアドレスの形式（例: desk@example.co.jp）で入力してください"
    if key == "DESK_PHONE" and not _PHONE.match(text):
        return f"{label}: 電話番号（例: 03-1234-5678）を半角の数字とハイフンで入力してください"
    if len(text) > 200:
        return f"{label}: 200文字以内で入力してください"
    return None


def form_url_for_port(host: str, port: int) -> str:
    """The public form's address as ``mynumber run`` serves it (a wildcard host is reached
    through the loopback address)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104  # nosec B104 - compared, not bound
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load(overrides: dict | None = None, component: str = "portal") -> dict:
    """Build the Flask config mapping for the admin portal (the public form reuses a subset)."""
    home = instance_home()
    if overrides and "MYNUMBER_HOME" in overrides:
        home = Path(overrides["MYNUMBER_HOME"]).resolve()
    https = _bool("MYNUMBER_HTTPS", False)
    stored = instance_settings(home)

    def setting(env: str, default: str = "") -> str:
        """The environment, else the instance's settings file, else ``default``."""
        return os.environ.get(env) or stored.get(env) or default

    cfg: dict = {
        "MYNUMBER_HOME": str(home),
        "SQLALCHEMY_DATABASE_URI": database_url(home),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # A pooled connection is checked before use, so a restarted database
        # costs at most the requests made while it was down (answered 503).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "JOB_QUEUE": os.environ.get("MYNUMBER_JOB_QUEUE", "mynumber"),
        "SMTP_URL": os.environ.get("SMTP_URL") or None,
        "MAIL_FROM": setting("MYNUMBER_MAIL_FROM"),
        "KEYRING_PATH": os.environ.get("MYNUMBER_KEYRING", str(home / "keyring.json")),
        # Who holds the KEKs (app.vault.custody): "file" (the ring file above) or "pkcs11"
        # (an HSM; the ring file then keeps only what needs no HSM). docs/deployment.md.
        "KEY_PROVIDER": os.environ.get("MYNUMBER_KEY_PROVIDER", "file").strip().lower(),
        "PKCS11_MODULE": os.environ.get("MYNUMBER_PKCS11_MODULE") or None,
        "PKCS11_TOKEN_LABEL": os.environ.get("MYNUMBER_PKCS11_TOKEN_LABEL") or None,
        # The user PIN: preferably a file (0600) the service account alone reads, re-read at
        # each login; else the variable itself.
        "PKCS11_PIN_FILE": os.environ.get("MYNUMBER_PKCS11_PIN_FILE") or None,
        "PKCS11_PIN": os.environ.get("MYNUMBER_PKCS11_PIN") or None,
        # The token objects are labelled <prefix>-kek-<version>, <prefix>-mac, <prefix>-ring.
        "PKCS11_KEY_PREFIX": os.environ.get("MYNUMBER_PKCS11_KEY_PREFIX", "mnv"),
        # How long a process keeps a working key the HSM unwrapped (seconds; 0: never).
        "PKCS11_WORKING_KEY_TTL": float(os.environ.get("MYNUMBER_PKCS11_WORKING_KEY_TTL", "600")),
        "AUDIT_CHECKPOINT_FILE": str(home / "audit_checkpoints.jsonl"),
        "AUDIT_PUBLIC_KEY_FILE": str(home / "audit_public_key.pem"),
        "OUTBOX_DIR": str(home / "outbox"),
        "LOG_FILE": os.environ.get("MYNUMBER_LOG_FILE", str(home / "mynumber.log")),
        # Who we are (IDENTITY): no default, sending and printing refuse until set.
        "CLIENT_NAME": setting("MYNUMBER_CLIENT_NAME"),
        "OPERATOR_NAME": setting("MYNUMBER_OPERATOR_NAME"),
        # The operator's person responsible for the service (責任者, e.g. 「情報セキュリティ
        # 責任者 山田 太郎」), named on the deletion certificate and the invoice.
        "OPERATOR_RESPONSIBLE": setting("MYNUMBER_OPERATOR_RESPONSIBLE"),
        # The public form's address in every link and QR code. `mynumber run` derives it from
        # the port it serves (and stores it for the instance's other processes) unless set.
        "PUBLIC_FORM_URL": setting(
            "MYNUMBER_PUBLIC_FORM_URL", form_url_for_port("127.0.0.1", DEFAULT_FORM_PORT)
        ),
        "PUBLIC_FORM_URL_GIVEN": bool(os.environ.get("MYNUMBER_PUBLIC_FORM_URL")),
        # Before a campaign is sent or a print batch made, the form's health endpoint must
        # answer within this many seconds (0: not checked, e.g. a portal that cannot reach
        # the form host through the firewall).
        "FORM_CHECK_TIMEOUT": float(os.environ.get("MYNUMBER_FORM_CHECK_TIMEOUT", "3")),
        # Embedded mode (no Redis): how often `mynumber run` hands the outbox over.
        "OUTBOX_INTERVAL_SECONDS": float(os.environ.get("MYNUMBER_OUTBOX_INTERVAL_SECONDS", "3")),
        # Flask-AppBuilder
        "APP_NAME": "MyNumber Vault",
        "APP_THEME": "",
        "FAB_SECURITY_MANAGER_CLASS": "app.web.security.VaultSecurityManager",
        "FAB_CREATE_DB": False,  # Alembic owns the schema, FAB's tables included.
        "FAB_ADD_SECURITY_API": False,  # FAB's REST API is CSRF-exempt: expose none.
        "FAB_API_SWAGGER_UI": False,
        # Roles are fixed in app/access/policy.py: FAB's permission editors would only be a way for
        # an administrator to grant a role a number-reading permission (invariant 3).
        "FAB_ADD_SECURITY_PERMISSION_VIEW": False,
        "FAB_ADD_SECURITY_VIEW_MENU_VIEW": False,
        "FAB_ADD_SECURITY_PERMISSION_VIEWS_VIEW": False,
        "FAB_UPDATE_PERMS": False,  # permissions are synced by `mynumber init`, not at start-up.
        "FAB_PASSWORD_COMPLEXITY_ENABLED": True,  # nosec B105  # a setting name, not a password
        "FAB_PASSWORD_COMPLEXITY_VALIDATOR": password_complexity,
        "AUTH_TYPE": 1,  # AUTH_DB
        "AUTH_ROLE_ADMIN": "SystemAdmin",
        "AUTH_ROLE_PUBLIC": "Public",
        "AUTH_USER_REGISTRATION": False,
        "AUTH_RATE_LIMITED": True,
        "AUTH_RATE_LIMIT": os.environ.get("MYNUMBER_LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI")
        or os.environ.get("REDIS_URL")
        or "memory://",
        # The public form: a prefix for the limiter's keys in a shared Redis.
        "RATELIMIT_KEY_PREFIX": os.environ.get("RATELIMIT_KEY_PREFIX", ""),
        "BABEL_DEFAULT_LOCALE": "ja_JP",
        # Our catalog completes FAB's partial ja_JP one (later directories override).
        "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).resolve().parent / "translations"),
        "BABEL_DEFAULT_TIMEZONE": "Asia/Tokyo",
        "LANGUAGES": {"ja_JP": {"flag": "jp", "name": "日本語"}},
        # Sessions and cookies
        # Each app reads only its own session key: a form host must never hold the portal's.
        "SECRET_KEY": _secret_key(home) if component == "portal" else None,
        # The public form signs its sessions with its own key: a compromised form host must
        # not be able to forge a portal session (the portal's key signs logins and MFA state).
        "FORM_SECRET_KEY": (
            _secret_key(home, "MYNUMBER_FORM_SECRET_KEY", "form_secret_key")
            if component == "form"
            else None
        ),
        "PERMANENT_SESSION_LIFETIME": timedelta(
            minutes=int(os.environ.get("MYNUMBER_IDLE_MINUTES", "15"))
        ),
        # However active, a sign-in ends this long after it began (a stolen cookie stops working).
        "SESSION_ABSOLUTE_LIFETIME": timedelta(
            hours=float(os.environ.get("MYNUMBER_SESSION_ABSOLUTE_HOURS", "10"))
        ),
        "SESSION_REFRESH_EACH_REQUEST": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": 3600,
        "MAX_CONTENT_LENGTH": int(os.environ.get("MYNUMBER_MAX_UPLOAD_BYTES", 64 * 1024 * 1024)),
        "MYNUMBER_HTTPS": https,
        "LOGIN_MAX_FAILURES": int(os.environ.get("MYNUMBER_LOGIN_MAX_FAILURES", "5")),
        "LOGIN_LOCKOUT_MINUTES": int(os.environ.get("MYNUMBER_LOGIN_LOCKOUT_MINUTES", "30")),
        "MFA_ISSUER": os.environ.get("MYNUMBER_MFA_ISSUER", "MyNumber Vault"),
        # The audit log signs itself (app.audit.signing): a checkpoint every N events and every
        # few minutes while events arrive; `audit verify` fails on a longer unsigned tail.
        "AUDIT_CHECKPOINT_EVERY": int(os.environ.get("MYNUMBER_AUDIT_CHECKPOINT_EVERY", "500")),
        "AUDIT_CHECKPOINT_MINUTES": float(os.environ.get("MYNUMBER_AUDIT_CHECKPOINT_MINUTES", "5")),
        "AUDIT_MAX_UNSIGNED": int(os.environ.get("MYNUMBER_AUDIT_MAX_UNSIGNED", "2000")),
        "AUDIT_MAX_UNSIGNED_MINUTES": float(
            os.environ.get("MYNUMBER_AUDIT_MAX_UNSIGNED_MINUTES", "30")
        ),
        # Each checkpoint also goes to syslog: udp://host:514, tcp://host:514 or /dev/log.
        "AUDIT_SYSLOG": os.environ.get("MYNUMBER_AUDIT_SYSLOG") or None,
        # How long an audited action waits for the chain head before it is refused (503).
        "AUDIT_LOCK_TIMEOUT_SECONDS": float(
            os.environ.get("MYNUMBER_AUDIT_LOCK_TIMEOUT_SECONDS", "5")
        ),
        # Intake (the public form): the HPKE public key file is all the form needs to seal.
        "INTAKE_PUBLIC_KEY_FILE": os.environ.get(
            "MYNUMBER_INTAKE_PUBLIC_KEY_FILE", str(home / "intake_public_key.json")
        ),
        "INTAKE_VALID_DAYS": int(os.environ.get("MYNUMBER_INTAKE_VALID_DAYS", "60")),
        "INTAKE_MAX_FAILURES": int(os.environ.get("MYNUMBER_INTAKE_MAX_FAILURES", "5")),
        "INTAKE_SESSION_MINUTES": int(os.environ.get("MYNUMBER_INTAKE_SESSION_MINUTES", "30")),
        "INTAKE_MAX_FILE_BYTES": int(os.environ.get("MYNUMBER_INTAKE_MAX_FILE_BYTES", 10_000_000)),
        "INTAKE_MAX_REQUEST_BYTES": int(
            os.environ.get("MYNUMBER_INTAKE_MAX_REQUEST_BYTES", 25_000_000)
        ),
        "INTAKE_MAX_SUBMISSION_BYTES": int(
            os.environ.get("MYNUMBER_INTAKE_MAX_SUBMISSION_BYTES", 60_000_000)
        ),
        "INTAKE_MAX_IMAGE_PIXELS": int(
            os.environ.get("MYNUMBER_INTAKE_MAX_IMAGE_PIXELS", 40_000_000)
        ),
        # Per client IP (carrier NAT puts many phones behind one address: keep it generous),
        # for token look-ups (guessing), and per token once inside.
        "INTAKE_RATE_LIMIT_IP": os.environ.get("MYNUMBER_INTAKE_RATE_LIMIT_IP", "600 per minute"),
        "INTAKE_RATE_LIMIT_TOKEN_LOOKUP": os.environ.get(
            "MYNUMBER_INTAKE_RATE_LIMIT_TOKEN_LOOKUP", "30 per minute"
        ),
        "INTAKE_RATE_LIMIT_TOKEN": os.environ.get(
            "MYNUMBER_INTAKE_RATE_LIMIT_TOKEN", "120 per minute"
        ),
        # Collection operations. The client's policy: acceptance by a second operator
        # (four-eyes) and whether ID images are kept (encrypted under the person's DEK) after
        # verification; both default to the stricter/leaner choice a campaign can override.
        "COLLECTION_FOUR_EYES": _bool("MYNUMBER_FOUR_EYES", False),
        "COLLECTION_KEEP_ID_IMAGES": _bool("MYNUMBER_KEEP_ID_IMAGES", False),
        # A campaign link stays usable this many days after the deadline (reminders follow it).
        "COLLECTION_LINK_GRACE_DAYS": int(os.environ.get("MYNUMBER_LINK_GRACE_DAYS", "60")),
        "DUNNING_INTERVAL_BUSINESS_DAYS": int(
            os.environ.get("MYNUMBER_DUNNING_INTERVAL_BUSINESS_DAYS", "5")
        ),
        "DUNNING_MAX_REMINDERS": int(os.environ.get("MYNUMBER_DUNNING_MAX_REMINDERS", "3")),
        "MAIL_MAX_ATTEMPTS": int(os.environ.get("MYNUMBER_MAIL_MAX_ATTEMPTS", "5")),
        "PRINT_CHUNK_LETTERS": int(os.environ.get("MYNUMBER_PRINT_CHUNK_LETTERS", "50")),
        "KIT_CARRIER": os.environ.get("MYNUMBER_KIT_CARRIER", "日本郵便"),
        "KIT_SEND_METHOD": os.environ.get("MYNUMBER_KIT_SEND_METHOD", "定形外郵便（規格内）"),
        # The return envelope must be trackable (spec 5.2-3: 履歴が追えるもの).
        "KIT_RETURN_METHOD": os.environ.get("MYNUMBER_KIT_RETURN_METHOD", "特定記録郵便"),
        # Where return envelopes go: printed on every kit (no default: a kit must not carry a
        # made-up address; print batches refuse to start until these are set).
        "OPERATOR_POSTAL_CODE": os.environ.get("MYNUMBER_OPERATOR_POSTAL_CODE", ""),
        "OPERATOR_ADDRESS": os.environ.get("MYNUMBER_OPERATOR_ADDRESS", ""),
        "DESK_PHONE": setting("MYNUMBER_DESK_PHONE"),
        "DESK_EMAIL": setting("MYNUMBER_DESK_EMAIL"),
        # Storage lifecycle (docs/lifecycle.md). Put backups on another volume in production.
        "BACKUP_DIR": os.environ.get("MYNUMBER_BACKUP_DIR", str(home / "backups")),
        "BACKUP_KEEP": int(os.environ.get("MYNUMBER_BACKUP_KEEP", "14")),
        # The operator's recovery public key (mynumber-archive keygen): when set, the daily
        # job and every disposal also write a key-ring backup sealed to it.
        "RECOVERY_PUBLIC_KEY": os.environ.get("MYNUMBER_RECOVERY_PUBLIC_KEY") or None,
        "DISPOSAL_JOURNAL_FILE": os.environ.get(
            "MYNUMBER_DISPOSAL_JOURNAL", str(home / "disposal_journal.jsonl")
        ),
        "RETURN_DIR": str(home / "returns"),
        # How long compaction after a disposal waits for older transactions (PostgreSQL).
        "DISPOSAL_COMPACT_WAIT_SECONDS": int(
            os.environ.get("MYNUMBER_COMPACT_WAIT_SECONDS", "300")
        ),
        "RETENTION_UPCOMING_DAYS": int(os.environ.get("MYNUMBER_RETENTION_UPCOMING_DAYS", "90")),
        # Monthly usage report: the client's addresses the PDF is e-mailed to.
        "REPORT_RECIPIENTS": [
            a.strip()
            for a in os.environ.get("MYNUMBER_REPORT_RECIPIENTS", "").split(",")
            if a.strip()
        ],
        # The 請求書 (qualified invoice): the operator's 登録番号 (T + 13 digits), the contract's
        # title; the responsible person (OPERATOR_RESPONSIBLE) and the operator's name and
        # address are above.
        "INVOICE_REGISTRATION_NUMBER": os.environ.get("MYNUMBER_INVOICE_REGISTRATION_NUMBER", ""),
        "CONTRACT_TITLE": os.environ.get("MYNUMBER_CONTRACT_TITLE", ""),
        # 督促の連絡 (／人) as agreed with the client: "person" bills each person once per
        # campaign (the default), "reminder" bills every reminder sent.
        "BILLING_REMINDER_UNIT": os.environ.get("MYNUMBER_BILLING_REMINDER_UNIT", "person"),
        # Proof of safety (docs/security.md, docs/deployment.md).
        # Who is mailed when a canary number is touched (comma-separated addresses).
        "SECURITY_CONTACT": os.environ.get("MYNUMBER_SECURITY_CONTACT", ""),
        # Networks allowed to reach the admin portal (CIDRs, comma-separated; empty = all).
        "ADMIN_ALLOWED_NETWORKS": os.environ.get("MYNUMBER_ADMIN_ALLOWED_NETWORKS", ""),
        # Reverse proxies whose X-Forwarded-For is believed (CIDRs; empty = none).
        "TRUSTED_PROXIES": os.environ.get("MYNUMBER_TRUSTED_PROXIES", ""),
        "PRODUCTION": _bool("MYNUMBER_PRODUCTION", False),
    }
    if overrides:
        cfg.update(overrides)
    _check_mail_settings(cfg)
    return cfg


def _check_mail_settings(cfg: dict) -> None:
    """Addresses set in the environment become mail headers: a line break in one (a pasted
    value, a hand-edited unit file) is refused at start-up, naming the variable."""
    for key in ("MAIL_FROM", "DESK_EMAIL", "SECURITY_CONTACT", "REPORT_RECIPIENTS"):
        value = cfg.get(key)
        for item in value if isinstance(value, list | tuple) else [value]:
            problem = header_problem(f"設定 MYNUMBER_{key}", item if isinstance(item, str) else "")
            if problem:
                raise ValueError(problem)
