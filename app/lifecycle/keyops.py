"""Key operations (rotation, retirement, the list of KEK versions), shared by the CLI and the
portal; each is audited first.

A KEK is used in three places, and retiring it must account for all of them:

- data keys (``data_key.wrapped``, ``data_key.kek_version``): ``Vault.rewrap_all``;
- operational secrets sealed under a KEK-derived key (``Vault.seal_system``) and kept in the
  database: the TOTP seeds, the rendered print files and the import/照合 confirmations
  (each column declares itself, ``app.models.system_sealed``); ``rotate`` seals them again under the new KEK;
- database backups (``.mnvbak``), whose file key is wrapped the same way. A backup file is
  not rewritten: retiring its KEK makes it unrestorable (with the current key ring), which
  is what disposal wants of old copies, so ``retire`` names those files and goes on only
  when the operator confirms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audit import trail
from app.core.actor import Actor
from app.io import tickets
from app.models import BackupRecord, DataKey, SystemSealed
from app.models import sealed_columns as declared
from app.vault import sealed
from app.vault.envelopes import (
    FORMAT_1,
    HEADER_SIZE,
    EnvelopeError,
    Vault,
    change_kek,
    header_format,
    header_key_version,
    parse_envelope,
)


class RetireRefused(RuntimeError):
    """The KEK cannot be retired; the message (Japanese) says why and what to do."""


class BackupsWouldBeLost(RetireRefused):
    """Retiring would make these backup files unrestorable and the operator has not agreed."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


# -- what each KEK protects --------------------------------------------------------------------
@dataclass(frozen=True)
class SealedColumn:
    """A database column declared as holding ``Vault.seal_system`` blobs (``app.models``)."""

    model: type
    column: str
    spec: SystemSealed

    @property
    def label(self) -> str:
        return self.spec.label


def sealed_columns() -> list[SealedColumn]:
    """Every system-sealed column, found from the schema's own declarations."""
    return [SealedColumn(model, column, spec) for model, column, spec in declared()]


@dataclass(frozen=True)
class KekUsage:
    """What one KEK version still protects (counts and file names, never key material)."""

    version: int
    current: bool
    data_keys: int
    sealed: dict[str, int] = field(default_factory=dict)
    backups: tuple[str, ...] = ()

    @property
    def in_database(self) -> int:
        return self.data_keys + sum(self.sealed.values())

    def describe_database(self) -> str:
        parts = [f"データ鍵 {self.data_keys} 件"] if self.data_keys else []
        parts += [f"{label} {n} 件" for label, n in self.sealed.items() if n]
        return "、".join(parts) or "なし"


def _sealed_headers(session: Session, spec: SealedColumn) -> Iterator[tuple[object, bytes]]:
    """(primary key, header bytes) of every blob in the column: no blob is read whole."""
    column = getattr(spec.model, spec.column)
    yield from session.execute(
        select(spec.model.id, func.substr(column, 1, HEADER_SIZE)).where(column.is_not(None))
    )


def _sealed_versions(session: Session, spec: SealedColumn) -> Iterator[tuple[object, int | None]]:
    """(primary key, KEK version) of every blob in the column, from its header bytes only."""
    for key, prefix in _sealed_headers(session, spec):
        yield key, header_key_version(prefix)


def backup_files(session: Session, backup_dir: str | Path | None) -> list[Path]:
    """Every database backup we know of: the backup folder, and the files the
    ``backup_record`` table names (a manual backup may have been written elsewhere)."""
    found: set[Path] = set()
    if backup_dir and Path(backup_dir).is_dir():
        found |= set(Path(backup_dir).glob(f"*{sealed.BACKUP_SUFFIX}"))
    names = session.execute(
        select(BackupRecord.file_name).where(
            BackupRecord.pruned_at.is_(None), BackupRecord.backend != "keyring"
        )
    ).scalars()
    found |= {Path(name) for name in names if Path(name).is_file()}
    return sorted(found)


def backup_kek_version(path: Path) -> int | None:
    """The KEK version that wraps a backup's file key, read from its header (no key needed);
    ``None`` for a file that is not a KEK-wrapped backup or cannot be read."""
    try:
        with open(path, "rb") as handle:
            header = sealed.read_header(handle)
        if header.purpose != "backup" or header.wrap.get("type") != "kek":
            return None
        return parse_envelope(header.blob).key_version
    except (OSError, sealed.SealedError, EnvelopeError):
        return None


def usage(session: Session, vault: Vault, backup_dir: str | Path | None = None) -> list[KekUsage]:
    """Every KEK version in the ring, whether current, and what still depends on it."""
    current = vault.keys.current_kek_version()
    data_keys = Counter(
        dict(
            session.execute(
                select(DataKey.kek_version, func.count()).group_by(DataKey.kek_version)
            ).all()
        )
    )
    sealed_counts = {
        spec.label: Counter(v for _key, v in _sealed_versions(session, spec))
        for spec in sealed_columns()
    }
    backups: dict[int, list[str]] = {}
    for path in backup_files(session, backup_dir):
        version = backup_kek_version(path)
        if version is not None:
            backups.setdefault(version, []).append(str(path))
    return [
        KekUsage(
            version=version,
            current=version == current,
            data_keys=data_keys.get(version, 0),
            sealed={label: counts.get(version, 0) for label, counts in sealed_counts.items()},
            backups=tuple(backups.get(version, [])),
        )
        for version in vault.keys.kek_versions()
    ]


# -- rotation ----------------------------------------------------------------------------------
def reseal_system_blobs(session: Session, vault: Vault) -> dict[str, int]:
    """Seal every system-sealed blob that is not under the current KEK, or still in envelope
    format 1, again under it in format 2, one row at a time (print files can be large), so
    that the old KEK can be retired."""
    current = vault.keys.current_kek_version()
    counts: dict[str, int] = {}
    for spec in sealed_columns():
        column = getattr(spec.model, spec.column)
        names = spec.spec.aad_columns
        aad_columns = [getattr(spec.model, name) for name in names]
        stale = [
            key
            for key, prefix in _sealed_headers(session, spec)
            if (version := header_key_version(prefix)) is not None
            and (version != current or header_format(prefix) == FORMAT_1)
        ]
        for key in stale:
            row = session.execute(
                select(column, *aad_columns).where(spec.model.id == key)
            ).one_or_none()
            if row is None or row[0] is None:
                continue  # gone meanwhile (a ticket used, a batch posted)
            aad = spec.spec.aad(**dict(zip(names, row[1:], strict=True)))
            blob = vault.reseal_system(spec.spec.purpose, aad, row[0])
            session.execute(update(spec.model).where(spec.model.id == key).values({column: blob}))
        counts[spec.label] = len(stale)
    return counts


def rotate(session: Session, vault: Vault, actor: Actor) -> tuple[int, int]:
    """Add a KEK version, re-wrap every data key and re-seal every system-sealed secret under
    it (envelope format 2: the header authenticated too), in one transaction. Afterwards only
    backups still depend on the old KEK.

    The audit event is written before the new key exists; if the re-wrap fails, the new KEK
    stays in the ring unused and the next rotation carries on from there. An import still
    wrapping keys under the old KEK is waited for first (``hold_kek``), so its keys are
    re-wrapped too.
    """
    change_kek(session)  # first: before the audit event takes the chain's lock
    trail.record(
        session,
        actor,
        "keys.rotate",
        object_type="kek",
        details={"from_version": vault.keys.current_kek_version()},
    )
    version = vault.keys.add_kek_version()
    count = vault.rewrap_all(session)
    tickets.purge_expired(session)  # expired confirmations are garbage, not dependants
    resealed = reseal_system_blobs(session, vault)
    trail.record(
        session,
        actor,
        "keys.rotated",
        object_type="kek",
        object_ids=[version],
        details={"rewrapped": count, "resealed": resealed},
    )
    session.commit()
    return version, count


# -- retirement --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetireResult:
    version: int
    unrestorable_backups: tuple[str, ...]


def _retire_event(
    session: Session, actor: Actor, version: int, details: dict, outcome: str = "success"
) -> None:
    """``keys.retire``, committed: the attempt before anything happens, and a refusal."""
    trail.record(
        session,
        actor,
        "keys.retire",
        object_type="kek",
        object_ids=[version],
        outcome=outcome,
        details=details,
        commit=True,
    )


def _refuse(session: Session, actor: Actor, version: int, error: RetireRefused) -> NoReturn:
    """A refusal is on the record too, next to the attempt."""
    _retire_event(session, actor, version, {"reason": str(error)}, outcome="failure")
    raise error


def retire(
    session: Session,
    vault: Vault,
    actor: Actor,
    version: int,
    *,
    backup_dir: str | Path | None = None,
    accept_unrestorable: bool = False,
) -> RetireResult:
    """Remove an old KEK from the key ring for good, once nothing in the database needs it.

    Audited first (``keys.retire``, committed: nothing is retired if it cannot be written),
    then ``keys.retired``. Refused — with a ``keys.retire`` failure event — for the current
    version, an unknown one, and one that still wraps a data key or seals a system secret
    (run ``rotate`` first). Backups whose file key it wraps become unrestorable with this key
    ring: refused unless ``accept_unrestorable`` (the operator saw the list and agreed).
    """
    ring = vault.keys
    _retire_event(session, actor, version, {"current": ring.current_kek_version()})
    current = ring.current_kek_version()
    if version == current:
        _refuse(
            session,
            actor,
            version,
            RetireRefused(
                f"KEK バージョン {version} は現在の KEK のため廃棄できません"
                "（先に mynumber keys rotate で新しい KEK を作ってください）"
            ),
        )
    if version not in ring.kek_versions():
        versions = "、".join(str(v) for v in ring.kek_versions())
        _refuse(
            session,
            actor,
            version,
            RetireRefused(
                f"KEK バージョン {version} は鍵リングにありません（鍵リングにあるのは {versions}）"
            ),
        )
    tickets.purge_expired(session)  # expired confirmations are garbage, not dependants
    session.commit()
    # No import may still be wrapping keys under this KEK unseen: wait for any, keep new ones
    # out until the ring no longer holds it.
    change_kek(session, fresh_transaction=True)
    found = next(u for u in usage(session, vault, backup_dir) if u.version == version)
    if found.in_database:
        _refuse(
            session,
            actor,
            version,
            RetireRefused(
                f"KEK バージョン {version} で暗号化されたデータがデータベースに残っているため"
                f"廃棄できません（{found.describe_database()}）。"
                "先に mynumber keys rotate を実行してください"
            ),
        )
    if found.backups and not accept_unrestorable:
        names = ", ".join(Path(p).name for p in found.backups)
        _refuse(
            session,
            actor,
            version,
            BackupsWouldBeLost(
                f"KEK バージョン {version} を廃棄すると、バックアップ {len(found.backups)} 件"
                f"（{names}）がこの鍵リングでは復元できなくなります。"
                "確認のうえ --yes を付けて実行してください",
                list(found.backups),
            ),
        )
    ring.retire_kek_version(version)
    trail.record(
        session,
        actor,
        "keys.retired",
        object_type="kek",
        object_ids=[version],
        details={"unrestorable_backups": [Path(p).name for p in found.backups]},
    )
    session.commit()
    return RetireResult(version, found.backups)
