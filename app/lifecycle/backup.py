"""Backups (spec 6-4): encrypted database snapshots, key-ring backups, restore, retention.

- ``create_backup``: a consistent snapshot — SQLite's online backup API into memory, or
  ``pg_dump --format=custom`` (one repeatable-read transaction) streamed — sealed as it is
  read (``app.vault.sealed``; nothing in the clear touches a disk). The database holds numbers,
  addresses and images only as ciphertext under per-person data keys; the sealing also covers
  the searchable columns (name, kana, birth date) and the audit log. The file key is wrapped
  under the current KEK by the key provider (``Vault.seal_system("backup", …)``), so a backup
  is useless without the key ring (and, with an HSM, without the HSM's KEK), which is backed
  up separately.
- ``backup_keyring``: the key ring sealed with HPKE (ML-KEM-768 + X25519) to the operator's
  recovery public key, whose private half is kept offline (``mynumber-archive keygen``).
- ``restore``: into an empty database only; then migrations, then every disposal recorded
  outside the database is re-applied (``app.lifecycle.journal.reapply``), so a backup taken
  before a disposal never brings the disposed people back.
- ``prune``: keep the newest N backups (the daily job); older files are deleted.
- A data disposal ends with a key closure (``app.lifecycle.key_closure.close_keys``): every
  older KEK is retired, so the database backups taken before it cannot be opened any more
  (names included), and the key-ring backups that still hold one of those KEKs are destroyed
  (``destroy_stale_keyring_backups``); ``restore_keyring`` drops a retired KEK from an older
  copy it is given (the journal and the ring name them by fingerprint).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess  # nosec B404  # pg_dump/pg_restore only, fixed argument lists
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from app.audit import checkpoints, trail
from app.core.actor import Actor
from app.lifecycle import holders, keyops
from app.lifecycle.journal import (
    DISPOSED_SECTION,
    disposed_outside,
    reapply,
    remember_people,
    retired_outside,
)
from app.models import AuditChainHead, BackupRecord, MyNumberRecord, Person, utcnow
from app.vault import sealed
from app.vault.envelopes import Vault, VaultError
from app.vault.keyring import KeyRingError, RingFile, ring_kek_fingerprints

BACKUP_SUFFIX = sealed.BACKUP_SUFFIX
KEYRING_SUFFIX = sealed.KEYRING_SUFFIX
BLOCK = 1024 * 1024

log = logging.getLogger(__name__)


class BackupError(RuntimeError):
    """A backup or restore that could not be done; one Japanese line, no content."""


# -- the file key, wrapped by the KEK --------------------------------------------------------
def _kek_aad(digest: bytes) -> str:
    return "mnv:backup:" + digest.hex()


def kek_wrapper(vault: Vault) -> sealed.Wrapper:
    return sealed.Wrapper(
        {"type": "kek", "kek_version": vault.keys.current_kek_version()},
        wrap=lambda key, digest: vault.seal_system("backup", _kek_aad(digest), key),
    )


def kek_unwrapper(vault: Vault):
    def unwrap(wrap: dict, blob: bytes, digest: bytes) -> bytes:
        if wrap.get("type") != "kek":
            raise sealed.SealedError("このファイルは鍵リングの KEK で暗号化されていません")
        try:
            return vault.open_system("backup", _kek_aad(digest), blob)
        except (VaultError, KeyRingError) as exc:
            raise sealed.SealedError(
                "バックアップを復号できません（鍵リングが違うか、ファイルが改ざんされています）"
            ) from exc

    return unwrap


# -- helpers -------------------------------------------------------------------------------
def backend_name(engine: Engine) -> str:
    return "sqlite" if engine.dialect.name == "sqlite" else "postgresql"


def schema_revision(session: Session) -> str | None:
    try:
        return session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - an empty database has none
        session.rollback()
        return None


def libpq(url: URL) -> tuple[str, dict]:
    """A libpq connection string without the password, and the environment carrying it
    (a password on a command line is visible to every user of the host)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    clean = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return clean.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BackupError(
            f"{name} が見つかりません（PostgreSQL クライアントをインストールしてください）"
        )
    return path


def _private_file(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


# -- backup ----------------------------------------------------------------------------------
def _rollback_journal_header(image: bytes | bytearray) -> bytes:
    """A WAL database's header (file format bytes 18-19 = 2) cannot be opened from memory;
    mark the image as rollback-journal (1). The live database switches back to WAL on its
    first connection (``app.web.base._sqlite_pragmas``)."""
    data = bytearray(image)
    if len(data) >= 100 and data[:16] == b"SQLite format 3\x00":
        data[18] = data[19] = 1
    return bytes(data)


def _dump_sqlite(engine: Engine, sink) -> None:
    source = sqlite3.connect(engine.url.database)
    memory = sqlite3.connect(":memory:")
    try:
        source.backup(memory)
        image = memory.serialize()
    finally:
        source.close()
        memory.close()
    view = memoryview(_rollback_journal_header(image))
    for start in range(0, len(view), BLOCK):
        sink.write(view[start : start + BLOCK])


def _dump_postgres(engine: Engine, sink) -> None:
    dsn, env = libpq(engine.url)
    process = subprocess.Popen(  # noqa: S603  # nosec B603  # fixed arguments, resolved path, no shell
        [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--dbname", dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        for block in iter(lambda: process.stdout.read(BLOCK), b""):
            sink.write(block)
        process.stderr.read()
    finally:
        code = process.wait()
    if code != 0:
        raise BackupError(f"pg_dump が失敗しました（終了コード {code}）")


def snapshot_meta(session: Session, engine: Engine, client_name: str) -> dict:
    head = session.get(AuditChainHead, 1)
    return {
        "backend": backend_name(engine),
        "schema_revision": schema_revision(session),
        "audit_seq": head.seq if head else 0,
        "audit_hash": head.hash if head else None,
        "people": session.execute(select(func.count(Person.id))).scalar_one(),
        "numbers": session.execute(select(func.count(MyNumberRecord.id))).scalar_one(),
        "client": client_name,
    }


def create_backup(
    session: Session,
    vault: Vault,
    actor: Actor,
    out: str | Path,
    *,
    kind: str = "manual",
    client_name: str = "",
) -> BackupRecord:
    """Write an encrypted, consistent snapshot of the database to ``out`` (audited first)."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"出力先のファイルが既にあります: {out}")
    engine = session.get_bind()
    trail.record(
        session,
        actor,
        "backup.create",
        object_type="backup",
        details={"file": out.name, "kind": kind},
        commit=True,
    )
    meta = snapshot_meta(session, engine, client_name)
    session.commit()
    partial = out.with_name(out.name + ".part")
    try:
        with _private_file(partial) as handle:
            writer = sealed.SealedWriter(handle, "backup", kek_wrapper(vault), meta)
            if meta["backend"] == "sqlite":
                _dump_sqlite(engine, writer)
            else:
                _dump_postgres(engine, writer)
            writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, out)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        trail.record(
            session,
            actor,
            "backup.create",
            object_type="backup",
            outcome="failure",
            details={"file": out.name, "error": type(exc).__name__},
            commit=True,
        )
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"バックアップを作成できませんでした（{type(exc).__name__}）") from exc
    record = BackupRecord(
        kind=kind,
        file_name=str(out),
        size_bytes=out.stat().st_size,
        sha256=sealed.sha256_file(out),
        backend=meta["backend"],
        schema_revision=meta["schema_revision"],
        audit_seq=meta["audit_seq"],
        created_by=actor.name,
    )
    session.add(record)
    session.flush()
    trail.record(
        session,
        actor,
        "backup.created",
        object_type="backup",
        object_ids=[record.id],
        details={"file": out.name, "sha256": record.sha256, "bytes": record.size_bytes},
    )
    session.commit()
    return record


# -- restore ---------------------------------------------------------------------------------
@dataclass
class Restored:
    created_at: str
    audit_seq: int
    schema_revision: str | None
    reapplied_people: int
    reapplied_keys: int


def database_is_empty(engine: Engine) -> bool:
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        if not path.exists() or path.stat().st_size == 0:
            return True
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalar_one()
    return count == 0


def _restore_sqlite(engine: Engine, chunks) -> None:
    image = bytearray()
    for chunk in chunks:
        image += chunk
    memory = sqlite3.connect(":memory:")
    try:
        memory.deserialize(_rollback_journal_header(image))
        if memory.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("バックアップ内のデータベースが壊れています")
        path = Path(engine.url.database)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(path)
        try:
            memory.backup(target)
        finally:
            target.close()
    finally:
        memory.close()


def _restore_postgres(engine: Engine, chunks) -> None:
    dsn, env = libpq(engine.url)
    process = subprocess.Popen(  # noqa: S603  # nosec B603  # fixed arguments, resolved path, no shell
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            dsn,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
        process.stdin.close()
    except BaseException:
        # A chunk that fails to decrypt: pg_restore is stopped, its one transaction rolls back.
        process.kill()
        process.wait()
        raise
    process.stderr.read()
    code = process.wait()
    if code != 0:
        raise BackupError(f"pg_restore が失敗しました（終了コード {code}）")


def restore(
    session: Session,
    vault: Vault,
    actor: Actor,
    source: str | Path,
    *,
    journal: str | Path | None,
    upgrade,
    checkpoint_file: str | Path | None = None,
) -> Restored:
    """Restore a backup into an empty database, migrate it, then re-apply every disposal.
    ``upgrade`` runs the migrations (the app's Alembic ``upgrade``); ``checkpoint_file`` is the
    audit checkpoint file outside the database, set aside (``set_checkpoints_aside``)."""
    engine = session.get_bind()
    session.close()
    refuse_retired_backup(vault.keys, source)
    if not database_is_empty(engine):
        raise BackupError(
            "復元先のデータベースが空ではありません（空のデータベースにのみ復元できます）"
        )
    try:
        with open(source, "rb") as handle:
            header, chunks = sealed.open_stream(handle, kek_unwrapper(vault), purpose="backup")
            backend = backend_name(engine)
            if header.meta.get("backend") != backend:
                raise BackupError(
                    f"このバックアップは {header.meta.get('backend')} のものです"
                    f"（復元先は {backend}）"
                )
            if backend == "sqlite":
                _restore_sqlite(engine, chunks)
            else:
                _restore_postgres(engine, chunks)
    except sealed.SealedError as exc:
        raise BackupError(str(exc)) from exc
    except OSError as exc:
        raise BackupError(f"バックアップファイルを読み込めません: {source}") from exc
    engine.dispose()
    upgrade()
    reapplied = reapply(session, vault, actor, journal, compact=False)
    set_aside = set_checkpoints_aside(checkpoint_file)
    trail.record(
        session,
        actor,
        "backup.restored",
        object_type="backup",
        details={
            "file": Path(source).name,
            "backup_created_at": header.fields.get("created_at"),
            "backup_audit_seq": header.meta.get("audit_seq"),
            "backup_schema_revision": header.meta.get("schema_revision"),
            "reapplied_people": reapplied.people,
            "reapplied_data_keys": reapplied.data_keys,
            "checkpoints_set_aside": set_aside,
        },
    )
    session.commit()
    if reapplied.changed:
        holders.compact_storage(session, holders.touched_tables())
    return Restored(
        header.fields.get("created_at", ""),
        int(header.meta.get("audit_seq") or 0),
        header.meta.get("schema_revision"),
        reapplied.people,
        reapplied.data_keys,
    )


def refuse_retired_backup(keys: RingFile, source: str | Path) -> None:
    """A backup whose KEK was retired (by a disposal's key closure or ``keys retire``) can
    never be opened again: say so plainly, instead of "wrong key ring"."""
    version = keyops.backup_kek_version(Path(source))
    if version is None or version in keys.kek_versions():
        return
    if version in {int(r["version"]) for r in keys.retired()}:
        log.warning(
            "restore refused: backup %s is under retired KEK %s", Path(source).name, version
        )
        raise BackupError(
            f"このバックアップ（{Path(source).name}）は KEK バージョン {version} で暗号化されて"
            "いますが、この KEK は廃棄に伴い破棄済みのため、復元できません"
            "（廃棄の後に取ったバックアップを使ってください）"
        )


# -- the key ring ------------------------------------------------------------------------------
def backup_keyring(
    session: Session,
    keys: RingFile,
    actor: Actor,
    out: str | Path,
    recipient: sealed.RecipientPublic,
    kind: str = "keyring",
) -> str:
    """Seal the key ring to the operator's recovery public key (audited first)."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"出力先のファイルが既にあります: {out}")
    trail.record(
        session,
        actor,
        "keys.backup",
        object_type="keyring",
        details={"file": out.name, "recipient": recipient.fingerprint, "kind": kind},
        commit=True,
    )
    raw = keys.path.read_bytes()
    people = (keys.get_secret(DISPOSED_SECTION) or {}).get("people", [])
    meta = {
        "kek_versions": keys.kek_versions(),
        "shredded_keys": len(keys.shredded()),
        "disposed_people": len(people),
    }
    partial = out.with_name(out.name + ".part")
    try:
        with _private_file(partial) as handle:
            writer = sealed.SealedWriter(handle, "keyring", sealed.to_recipient(recipient), meta)
            writer.write(raw)
            writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, out)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    digest = sealed.sha256_file(out)
    session.add(
        BackupRecord(
            kind=kind,
            file_name=str(out),
            size_bytes=out.stat().st_size,
            sha256=digest,
            backend="keyring",
            created_by=actor.name,
        )
    )
    session.commit()
    return digest


def set_checkpoints_aside(checkpoint_file: str | Path | None) -> str | None:
    """Rename the audit checkpoint file outside the database before the restored chain goes on.

    It vouches for events up to the last checkpoint, and a backup holds fewer: left in place,
    it would stand in front of the restored chain, and the signer would refuse to sign (and
    ``audit verify`` to pass) for good. Kept whole under a dated name, it stays the evidence of
    what the restore left behind; the name goes into the restore's audit event. Returns it."""
    if not checkpoint_file or not Path(checkpoint_file).exists():
        return None
    path = Path(checkpoint_file)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.stem}.before-restore-{stamp}{path.suffix}")
    path.rename(target)
    return target.name


def restore_keyring(
    source: str | Path,
    private: sealed.RecipientPrivate,
    target: RingFile,
    journal: str | Path | None,
) -> dict:
    """Write the key ring back from its backup (only where none exists), then merge in every
    disposal the journal knows of: an older key-ring backup must not forget a disposal."""
    try:
        with open(source, "rb") as handle:
            header, chunks = sealed.open_stream(
                handle, sealed.from_recipient(private), purpose="keyring"
            )
            raw = b"".join(chunks)
    except OSError as exc:
        raise BackupError(f"鍵リングのバックアップを読み込めません: {source}") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise BackupError("鍵リングのバックアップの内容が不正です") from exc
    _drop_retired(data, retired_outside(journal), Path(source).name)
    target.install(data)
    people, key_ids = disposed_outside(target, journal)
    target.record_shredded(sorted(key_ids))
    remember_people(target, people)
    return {**header.meta, "created_at": header.fields.get("created_at")}


def _drop_retired(data: dict, retired_elsewhere: set[str], name: str) -> None:
    """Remove from a key ring read from a backup every KEK that was retired since (known by
    fingerprint from the journal, or from the backup itself); refuse a ring whose current
    KEK was retired: it predates a disposal and would open what the disposal closed."""
    retired = set(retired_elsewhere) | {r["fingerprint"] for r in data.get("retired", [])}
    keks = data.get("keks") or {}
    fingerprints = ring_kek_fingerprints(data)  # from the key, or from an HSM key's id
    dropped = sorted((v for v in keks if fingerprints[v] in retired), key=int)
    if not dropped:
        return
    if str(data.get("current_kek")) in dropped:
        log.warning("key-ring restore refused: %s holds only retired KEKs", name)
        raise BackupError(
            f"この鍵リングのバックアップ（{name}）は廃棄より前のものです。現在の KEK（バージョン "
            f"{data.get('current_kek')}）は廃棄に伴い破棄済みのため、復元できません"
            "（廃棄の後に取った鍵リングのバックアップを使ってください）"
        )
    known = {int(r["version"]) for r in data.get("retired", [])}
    for version in dropped:
        keks.pop(version)
        fingerprint = fingerprints[version]
        if int(version) not in known:
            data.setdefault("retired", []).append(
                {"version": int(version), "fingerprint": fingerprint}
            )


# -- what a disposal's key closure destroys ------------------------------------------------------
def keyring_backup_files(session: Session, backup_dir: str | Path | None) -> list[Path]:
    """Every key-ring backup we know of: the backup folder, and the files ``backup_record``
    names (``keys backup --out`` may have written one elsewhere)."""
    found: set[Path] = set()
    if backup_dir and Path(backup_dir).is_dir():
        found |= set(Path(backup_dir).glob(f"*{KEYRING_SUFFIX}"))
    names = session.execute(
        select(BackupRecord.file_name).where(
            BackupRecord.pruned_at.is_(None), BackupRecord.backend == "keyring"
        )
    ).scalars()
    found |= {Path(name) for name in names if Path(name).is_file()}
    return sorted(found)


def keyring_backup_versions(path: Path) -> list[int] | None:
    """The KEK versions a key-ring backup holds, from its public header (no key needed)."""
    try:
        with open(path, "rb") as handle:
            header = sealed.read_header(handle)
    except (OSError, sealed.SealedError):
        return None
    versions = header.meta.get("kek_versions")
    if header.purpose != "keyring" or not isinstance(versions, list):
        return None
    return [int(v) for v in versions]


def destroy_file(path: Path) -> None:
    """Overwrite a file with random bytes, then delete it (see the limits in the docs)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(os.urandom(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def destroy_stale_keyring_backups(
    session: Session, keys: RingFile, actor: Actor, backup_dir: str | Path | None
) -> list[str]:
    """Destroy every key-ring backup we know of that holds a KEK no longer in the ring (or
    whose header cannot be read): with it, an older database backup would open again.
    Audited first (``keys.backup_destroyed``, committed); returns the file paths."""
    live = set(keys.kek_versions())
    doomed = []
    for path in keyring_backup_files(session, backup_dir):
        versions = keyring_backup_versions(path)
        if versions is None or not set(versions) <= live:
            doomed.append(path)
    if not doomed:
        return []
    trail.record(
        session,
        actor,
        "keys.backup_destroyed",
        object_type="keyring",
        details={"files": [p.name for p in doomed], "kek_versions_kept": sorted(live)},
        commit=True,
    )
    now = utcnow()
    for path in doomed:
        destroy_file(path)
        for record in session.execute(
            select(BackupRecord).where(BackupRecord.file_name == str(path))
        ).scalars():
            record.pruned_at = now
    session.commit()
    return [str(p) for p in doomed]


def unreadable_backups(
    session: Session, keys: RingFile, backup_dir: str | Path | None
) -> list[str]:
    """Database backups we know of whose KEK is no longer in the ring: they cannot be opened."""
    live = set(keys.kek_versions())
    return [
        str(path)
        for path in keyops.backup_files(session, backup_dir)
        if (version := keyops.backup_kek_version(path)) is not None and version not in live
    ]


# -- contract end: the key ring itself ---------------------------------------------------------
class KeyRingStillNeeded(BackupError):
    """People are still stored: destroying the key ring would destroy their data unapproved."""


def destroy_keyring(
    session: Session,
    keys: RingFile,
    actor: Actor,
    backup_dir: str | Path | None,
    checkpoint_file: str | Path | None = None,
) -> list[str]:
    """The last step at contract end, after the return and the approved disposal of everyone:
    destroy the key ring (KEKs, index key, intake key) and the backups in ``backup_dir``.
    Every backup file anywhere then becomes unreadable — names included, not only numbers —
    except through a key-ring backup, which the operator destroys with the recovery key.

    Refused while anyone is still stored. Audited first, with a final signed checkpoint."""
    active = session.execute(
        select(func.count(Person.id)).where(Person.status != "disposed")
    ).scalar_one()
    if active:
        raise KeyRingStillNeeded(
            f"保管中の人物が {active} 名います。返却と全員の廃棄（承認済み）の後にのみ実行できます"
        )
    files = sorted(Path(backup_dir).glob("*.mnv*")) if backup_dir else []
    trail.record(
        session,
        actor,
        "keys.destroyed",
        object_type="keyring",
        details={"backups_deleted": [p.name for p in files]},
    )
    checkpoints.checkpoint(session, keys.audit_signing_key(), checkpoint_file)
    session.commit()
    for path in files:
        path.unlink(missing_ok=True)
    keys.destroy()  # an HSM's keys first, then the file: overwritten, then unlinked (see docs)
    return [p.name for p in files]


# -- retention of backups ---------------------------------------------------------------------
def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def prune(
    session: Session, actor: Actor, folder: str | Path, keep: int, suffix: str = BACKUP_SUFFIX
) -> list[str]:
    """Delete all but the newest ``keep`` backups in ``folder`` (names sort by time)."""
    folder = Path(folder)
    if keep < 0:
        raise BackupError("保存世代数は0以上で指定してください")
    files = sorted(folder.glob(f"*{suffix}")) if folder.exists() else []
    doomed = files[: max(0, len(files) - keep)]
    if not doomed:
        return []
    trail.record(
        session,
        actor,
        "backup.pruned",
        object_type="backup",
        details={"files": [p.name for p in doomed], "keep": keep},
        commit=True,
    )
    now = utcnow()
    for path in doomed:
        path.unlink(missing_ok=True)
        for record in session.execute(
            select(BackupRecord).where(BackupRecord.file_name == str(path))
        ).scalars():
            record.pruned_at = now
    session.commit()
    return [p.name for p in doomed]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
