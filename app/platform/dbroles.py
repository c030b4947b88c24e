"""Least-privilege PostgreSQL roles (``mynumber db roles``).

Four roles, each able to do its job and nothing more (docs/deployment.md):

- ``mnv_owner`` — owns the schema and every table; runs migrations (``mynumber init``) and
  maintenance that PostgreSQL reserves for owners (``VACUUM FULL`` after a disposal).
- ``mnv_portal`` — the admin portal and the workers: SELECT/INSERT/UPDATE/DELETE on the
  application's tables, no DDL; on the audit tables INSERT and SELECT only, so a compromised
  portal can append to the chain but never rewrite or delete it (the chain head row is the one
  audit row it updates).
- ``mnv_form`` — the public form: exactly what ``public_form/`` and the ``app.collection``
  functions it calls touch (``FORM_GRANTS``): the request it was given a token for, the
  person's name and birth date (second factor, the listed dependents) but none of the
  person's other columns, and INSERT of submissions, sealed parts, status history, inquiries
  and audit events. It cannot read a number, a data key, a sealed part, an audit event or an
  inquiry back.
- ``mnv_auditor`` — SELECT on the audit tables and the non-personal tables only.

Roles are global to the PostgreSQL server; grants are per database, so the command is run once
per database (and again after each migration: it is idempotent). A password given is set; a
role created without one gets a generated password, returned once and stored nowhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, defaultload, defer

from app.models import Person

AUDIT_TABLES = ("audit_event", "audit_checkpoint")
AUDIT_HEAD = "audit_chain_head"

# What ``mnv_form`` may read of a person (its grant below); every other column, including one
# added later, is hidden from the form: derived, so a new column cannot slip past the guard.
FORM_PERSON_COLUMNS = frozenset(
    "id kind code household_head_id dependent_seq relation name name_kana birth_date status".split()
)
FORM_HIDDEN_PERSON_COLUMNS = tuple(
    c.key for c in Person.__table__.columns if c.name not in FORM_PERSON_COLUMNS
)

# The public form's grants: table → privileges; a privilege may name columns.
# Found by reading public_form/views.py and the app.collection functions it calls, and proved by
# tests/public_form/test_form_role.py, which runs a whole submission as this role.
FORM_GRANTS: dict[str, list[str]] = {
    "collection_request": [
        "SELECT",
        "UPDATE (status, status_changed_at, failed_attempts, locked_at, reopened,"
        " decline_reason, decline_note)",
    ],
    "collection_request_status": ["INSERT", "SELECT (id)"],
    # The second factor (birth date) and the listed household: never the address, e-mail,
    # postal code or lifecycle columns (app.platform.dbroles.form_person_guard defers those).
    "person": [f"SELECT ({', '.join(sorted(FORM_PERSON_COLUMNS))})"],
    "submission": [
        "SELECT",
        "INSERT",
        "UPDATE (status, receipt_no, manifest_sealed, received_at, size_bytes)",
        "DELETE",
    ],
    # Never the sealed bytes back.
    "submission_part": [
        "SELECT (id, submission_id, subject_ref, part, doc_type, media_type, size_bytes,"
        " digest, created_at)",
        "INSERT",
        "DELETE",
    ],
    "inquiry": ["INSERT", "SELECT (id)"],
    "inquiry_action": ["INSERT", "SELECT (id)"],  # the inquiry's first history line (受付)
    "audit_event": ["INSERT"],
    AUDIT_HEAD: ["SELECT", "UPDATE (seq, hash)"],
    # The receipt mail promised in the submission's transaction (ids only), and the
    # after-commit hand-over to RQ (claim and mark; app.platform.outbox).
    "outbox_message": [
        "SELECT",
        "INSERT",
        "UPDATE (state, attempts, claimed_at, dispatched_at, next_attempt_at, last_error)",
    ],
}
# Person columns the form must never load (no grant): deferred in the form app.

# Tables that hold no personal data: the auditor's view besides the audit tables.
AUDITOR_TABLES = (
    "audit_event",
    "audit_chain_head",
    "audit_checkpoint",
    "handler_roster_entry",
    "retention_rule",
    "export_layout",
    "alembic_version",
)


@dataclass
class RolesResult:
    names: dict[str, str]
    created: list[str] = field(default_factory=list)
    generated: dict[str, str] = field(default_factory=dict)


class RolesError(RuntimeError):
    """Japanese: what is wrong and what to do."""


def role_names(prefix: str = "mnv") -> dict[str, str]:
    if not prefix.replace("_", "").isalnum() or not prefix[0].isalpha() or len(prefix) > 40:
        raise RolesError("ロール名の接頭辞は英字で始まる英数字と _ で指定してください")
    return {kind: f"{prefix}_{kind}" for kind in ("owner", "portal", "form", "auditor")}


def _q(name: str) -> str:
    """Quote an identifier we built ourselves (role and table names, never user text)."""
    return '"' + name.replace('"', '""') + '"'


def _tables(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ).scalars()
    )


def _sequences(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT sequence_name FROM information_schema.sequences"
                " WHERE sequence_schema = 'public' ORDER BY sequence_name"
            )
        ).scalars()
    )


def _owned_sequence(conn: Connection, table: str) -> list[str]:
    """The sequences behind a table's serial / identity columns."""
    rows = conn.execute(
        text(
            "SELECT pg_get_serial_sequence(:t, a.attname) FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        {"t": f"public.{table}"},
    ).scalars()
    return [r.split(".", 1)[-1].strip('"') for r in rows if r]


def _ensure_role(conn: Connection, name: str, password: str | None, result: RolesResult) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
    if not exists:
        if password is None:
            password = secrets.token_urlsafe(24)
            result.generated[name] = password
        conn.execute(text(f"CREATE ROLE {_q(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"))
        result.created.append(name)
    if password is not None:
        # Parameters cannot be bound in utility statements: quote the literal ourselves.
        literal = "'" + password.replace("'", "''") + "'"
        conn.execute(text(f"ALTER ROLE {_q(name)} WITH LOGIN PASSWORD {literal}"))


def apply(
    conn: Connection, passwords: dict[str, str | None] | None = None, prefix: str = "mnv"
) -> RolesResult:
    """Create or update the roles and (re)grant everything in the connected database."""
    if conn.dialect.name != "postgresql":
        raise RolesError(
            "データベースのロール設定は PostgreSQL にのみ適用されます"
            "（SQLite では OS のファイル権限で保護してください）"
        )
    names = role_names(prefix)
    result = RolesResult(names)
    passwords = passwords or {}
    for kind, name in names.items():
        _ensure_role(conn, name, passwords.get(kind), result)
    owner, portal, form, auditor = (names[k] for k in ("owner", "portal", "form", "auditor"))
    everyone = ", ".join(_q(n) for n in names.values())
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    conn.execute(text(f"GRANT CONNECT ON DATABASE {_q(database)} TO {everyone}"))
    # The schema: only the owner creates; the others may use what is granted.
    conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA public TO {_q(owner)}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {_q(portal)}, {_q(form)}, {_q(auditor)}"))
    conn.execute(
        text(f"REVOKE CREATE ON SCHEMA public FROM {_q(portal)}, {_q(form)}, {_q(auditor)}")
    )

    tables = _tables(conn)
    sequences = _sequences(conn)
    for table in tables:
        conn.execute(text(f"ALTER TABLE public.{_q(table)} OWNER TO {_q(owner)}"))
    for seq in sequences:
        conn.execute(text(f"ALTER SEQUENCE public.{_q(seq)} OWNER TO {_q(owner)}"))
    # Start from nothing for the three non-owner roles, then grant exactly.
    for table in tables:
        conn.execute(
            text(
                f"REVOKE ALL ON public.{_q(table)} FROM PUBLIC, {_q(portal)}, {_q(form)}, {_q(auditor)}"
            )
        )
    for seq in sequences:
        conn.execute(
            text(
                f"REVOKE ALL ON SEQUENCE public.{_q(seq)} FROM PUBLIC, {_q(portal)}, {_q(form)}, {_q(auditor)}"
            )
        )

    # Portal: DML everywhere but the audit tables (append and read only).
    for table in tables:
        if table in AUDIT_TABLES:
            privileges = "SELECT, INSERT"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        conn.execute(text(f"GRANT {privileges} ON public.{_q(table)} TO {_q(portal)}"))
    for seq in sequences:
        conn.execute(text(f"GRANT USAGE, SELECT ON SEQUENCE public.{_q(seq)} TO {_q(portal)}"))
    # VACUUM FULL after a disposal (app.lifecycle.holders.compact_storage) is an owner's right up to
    # PostgreSQL 16; from 17 the MAINTAIN privilege lets the portal's workers do it.
    version = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    if version >= 170000:
        for table in tables:
            if table not in AUDIT_TABLES:
                conn.execute(text(f"GRANT MAINTAIN ON public.{_q(table)} TO {_q(portal)}"))

    # Form: exactly FORM_GRANTS, with the sequences its INSERTs draw from.
    for table, privileges in FORM_GRANTS.items():
        if table not in tables:
            continue
        for privilege in privileges:
            conn.execute(text(f"GRANT {privilege} ON public.{_q(table)} TO {_q(form)}"))
        if any(p.startswith("INSERT") for p in privileges):
            for seq in _owned_sequence(conn, table):
                conn.execute(text(f"GRANT USAGE ON SEQUENCE public.{_q(seq)} TO {_q(form)}"))

    # Auditor: read the audit and the non-personal tables.
    for table in AUDITOR_TABLES:
        if table in tables:
            conn.execute(text(f"GRANT SELECT ON public.{_q(table)} TO {_q(auditor)}"))

    # Tables a later migration creates (as the owner) reach the portal without a re-run;
    # the form and the auditor get nothing new until this command decides.
    conn.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_q(owner)} IN SCHEMA public"
            f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {_q(portal)}"
        )
    )
    conn.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_q(owner)} IN SCHEMA public"
            f" GRANT USAGE, SELECT ON SEQUENCES TO {_q(portal)}"
        )
    )
    return result


_guard_installed = False
# Execution option of a statement that already carries the guard's options (``form_guarded``).
GUARDED = "mnv_form_person_guarded"
_guard_options: dict = {}


def _options_for(mapper) -> tuple:
    """The guard's options for one root mapper, built once: loader options are immutable,
    and building them for every query cost more than running the query."""
    opts = _guard_options.get(mapper)
    if opts is None:
        opts = _guard_options[mapper] = tuple(_build_options(mapper))
    return opts


def _build_options(mapper) -> list:
    """Defer the hidden columns on Person itself and on every relationship that leads
    to Person (a lazy load takes its options from the query that loaded the parent)."""
    hidden = [getattr(Person, c) for c in FORM_HIDDEN_PERSON_COLUMNS]
    opts = []
    if mapper.class_ is Person:
        opts += [defer(c, raiseload=True) for c in hidden]
    for rel in mapper.relationships:
        if rel.mapper.class_ is Person:
            opts += [
                defaultload(getattr(mapper.class_, rel.key)).defer(c, raiseload=True)
                for c in hidden
            ]
    return opts


def _root_mappers(statement) -> list:
    try:
        descriptions = statement.column_descriptions
    except Exception:  # noqa: BLE001 - not a plain select: nothing to defer
        return []
    out = []
    for d in descriptions:
        entity = d.get("expr")
        if isinstance(entity, type) and hasattr(entity, "__mapper__"):
            out.append(entity.__mapper__)
    return out


def form_guarded(statement):
    """``statement`` with the guard's options applied once, for a statement the form builds
    at import and runs on every request: the guard then has nothing left to add and skips
    working out the same options again."""
    opts = [o for mapper in _root_mappers(statement) for o in _options_for(mapper)]
    return statement.options(*opts).execution_options(**{GUARDED: True})


def form_person_guard() -> None:
    """In the public form, never load the person columns ``mnv_form`` may not read.

    The ORM selects every mapped column by default; with column-level grants that SELECT
    would be refused. Deferring the hidden columns (raise if touched) keeps the form's
    queries inside its grants on every database, so SQLite runs the same code. Installed once
    per process; it acts only inside the public form's app context.
    """
    global _guard_installed
    if _guard_installed:
        return

    @event.listens_for(Session, "do_orm_execute")
    def _hide(state) -> None:
        if not state.is_select or not has_app_context():
            return
        if current_app.import_name != "public_form":
            return
        if state.execution_options.get(GUARDED):
            return  # built by form_guarded(): the same options are already on it
        opts = [o for mapper in _root_mappers(state.statement) for o in _options_for(mapper)]
        if opts:
            state.statement = state.statement.options(*opts)

    _guard_installed = True
