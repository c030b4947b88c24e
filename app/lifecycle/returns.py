"""Return at contract end (spec 5.3-4): one archive of everything stored, sealed to the
client's public key.

The archive is a ZIP streamed straight into ``app.vault.sealed`` (HPKE to the client's key, by
default the post-quantum hybrid ML-KEM-768 + X25519): no plaintext ever reaches a file here,
and no password travels by e-mail. What it holds, file by file, is written by the sections of
``app.lifecycle.return_contents``; this module writes the archive around them (audited first,
a manifest at the end), checks it, and builds the one the portal asked for as a job.

The header, readable without the private key, carries a keyed fingerprint of the data the
archive was made from (counts, and HMACs over the people and number records — ciphertext
hashes, never a number) and is signed with the audit key: ``verify_archive`` checks an archive
against the live data without decrypting anything. The client opens the archive with
``mynumber-archive open --operator-key`` (``app/vault/sealed.py`` runs alone with Python and
``cryptography``), which refuses an archive the operator's key did not sign.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import canary, trail
from app.core.actor import Actor
from app.lifecycle import step_up
from app.lifecycle.return_contents import SECTIONS, Context, by_id, iso_date
from app.models import AuditEvent, MyNumberRecord, Person, ReturnArchive, utcnow
from app.vault import sealed
from app.vault.envelopes import Vault

VIEW = "ReturnArchive"
BUILD_JOB = "app.jobs.lifecycle.build_return_archive"  # the job, by name (app.platform.queue)
SUFFIX = ".mnva"


class ReturnError(ValueError):
    """An export or verification that cannot be done; Japanese, names the field."""


# -- fingerprint -------------------------------------------------------------------------------
FINGERPRINT = "return-fingerprint"  # the MAC purpose of the archive's keyed digests


def _sha(blob: bytes | None) -> str:
    """A ciphertext's SHA-256 (never a plaintext's), or empty for none."""
    return hashlib.sha256(blob).hexdigest() if blob else ""


def fingerprint(session: Session, vault: Vault, audit_seq: int) -> dict:
    """A keyed digest of everything the archive holds, computed without decrypting anything."""
    # Hashed here, then keyed by the provider (one MAC per digest): a digest that no one
    # without the vault's keys can recompute from guessed contents.
    people_hash = hashlib.sha256(b"people")
    numbers_hash = hashlib.sha256(b"numbers")
    counts = {"active": 0, "removed": 0, "disposed": 0, "numbers": 0}
    for batch in by_id(session, select(Person), Person.id):
        for p in batch:
            counts[p.status if p.status in counts else "active"] += 1
            fields = [
                p.id,
                p.status,
                p.kind,
                p.code,
                p.dependent_seq,
                p.household_head_id,
                p.relation,
                p.name,
                p.name_kana,
                iso_date(p.birth_date),
                p.postal_code,
                _sha(p.address_enc),
                p.email,
                iso_date(p.ended_on),
                iso_date(p.delete_after),
            ]
            people_hash.update(
                ("|".join("" if f is None else str(f) for f in fields) + "\n").encode()
            )
    for batch in by_id(session, select(MyNumberRecord), MyNumberRecord.id):
        for r in batch:
            counts["numbers"] += 1
            line = f"{r.id}|{r.person_id}|{r.status}|{_sha(r.ciphertext)}\n"
            numbers_hash.update(line.encode())
    event = session.get(AuditEvent, audit_seq)
    return {
        **counts,
        "people_digest": vault.keys.mac(FINGERPRINT, people_hash.digest()).hex(),
        "numbers_digest": vault.keys.mac(FINGERPRINT, numbers_hash.digest()).hex(),
        "audit_seq": audit_seq,
        "audit_hash": event.hash if event else None,
    }


# -- export -----------------------------------------------------------------------------------
@dataclass
class Exported:
    path: Path
    sha256: str
    size: int
    counts: dict
    manifest_sha256: str
    audit_seq: int


def check_purpose(purpose: str | None) -> str:
    problem = trail.purpose_problem(purpose, "利用目的（返却の目的）")
    if problem:
        raise ReturnError(problem)
    return (purpose or "").strip()


def export_archive(
    session: Session,
    vault: Vault,
    actor: Actor,
    out: str | Path,
    recipient: sealed.RecipientPublic,
    purpose: str,
    *,
    client_name: str,
    audit_public_pem: bytes,
    checkpoint_file: str | None = None,
    archive_id: uuid.UUID | None = None,
    authorized: bool = False,
) -> Exported:
    """Write the return archive (audited first, committed, before anything is decrypted)."""
    out = Path(out)
    try:
        if not authorized:
            policy.require(actor, "can_export", VIEW)
        purpose = check_purpose(purpose)
        if out.exists():
            raise ReturnError(f"出力先のファイルが既にあります: {out}")
    except Exception as exc:
        session.rollback()
        trail.record(
            session,
            actor,
            "return.export",
            object_type="return_archive",
            object_ids=[archive_id] if archive_id else [],
            purpose=(purpose or "").strip() or None,
            outcome="denied",
            details={"reason": str(exc)},
            commit=True,
        )
        raise
    archive_id = archive_id or uuid.uuid4()
    start = trail.record(
        session,
        actor,
        "return.export",
        object_type="return_archive",
        object_ids=[archive_id],
        purpose=purpose,
        details={"recipient": recipient.fingerprint, "file": out.name},
        commit=True,
    )
    audit_seq = start.seq
    if canary.configured(vault):
        canary.trip(session, vault, actor, session.execute(select(Person.id)).scalars(), "return")
    before = fingerprint(session, vault, audit_seq)
    signing = vault.keys.audit_signing_key()
    meta = {
        "archive_id": str(archive_id),
        "client": client_name,
        "fingerprint": before,
        "recipient": recipient.fingerprint,
    }
    partial = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            writer = sealed.SealedWriter(
                handle,
                "return-archive",
                sealed.to_recipient(recipient),
                meta,
                signer=signing.sign,
            )
            ctx = Context(
                session,
                vault,
                None,
                audit_seq,
                audit_public_pem,
                checkpoint_file,
                actor=actor,
                purpose=purpose,
                archive_id=str(archive_id),
            )
            with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                ctx.zf = zf
                for section in SECTIONS:
                    section(ctx)
                manifest = {
                    "format": "mnv-return-archive-v1",
                    "archive_id": str(archive_id),
                    "client": client_name,
                    "created_at": utcnow().isoformat(),
                    "purpose": purpose,
                    "requested_by": actor.name,
                    "counts": ctx.counts,
                    "fingerprint": before,
                    "files": ctx.manifest,
                }
                manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
                zf.writestr("manifest.json", manifest_bytes)
            writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        after = fingerprint(session, vault, audit_seq)
        if after != before:
            raise ReturnError("書き出しの途中でデータが変更されました。もう一度実行してください")
        os.replace(partial, out)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        session.rollback()
        trail.record(
            session,
            actor,
            "return.export",
            object_type="return_archive",
            object_ids=[archive_id],
            outcome="failure",
            details={"error": str(exc) if isinstance(exc, ReturnError) else type(exc).__name__},
            commit=True,
        )
        raise
    digest = sealed.sha256_file(out)
    size = out.stat().st_size
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    trail.record(
        session,
        actor,
        "return.exported",
        object_type="return_archive",
        object_ids=[archive_id],
        details={
            "sha256": digest,
            "bytes": size,
            "manifest_sha256": manifest_sha,
            "counts": ctx.counts,
            "recipient": recipient.fingerprint,
        },
        commit=True,
    )
    return Exported(out, digest, size, ctx.counts, manifest_sha, audit_seq)


# -- verification ------------------------------------------------------------------------------
@dataclass
class Verification:
    ok: bool
    problems: list[str]
    meta: dict
    signed: bool


LABELS = {
    "active": "保管中の人数",
    "removed": "扶養から削除された人数（保管中）",
    "disposed": "廃棄済みの人数",
    "numbers": "個人番号の記録数",
    "people_digest": "人物データの指紋",
    "numbers_digest": "個人番号データの指紋",
    "audit_hash": "監査ログ（書き出し時点）のハッシュ",
}


def verify_archive(
    session: Session, vault: Vault, path: str | Path, audit_public_key
) -> Verification:
    """Check an archive against the live data, without the private key and without
    decrypting anything: the signed header's fingerprint against one computed now."""
    try:
        with open(path, "rb") as handle:
            header = sealed.read_header(handle)
    except OSError as exc:
        raise ReturnError(f"ファイルを読み込めません: {path}") from exc
    if header.purpose != "return-archive":
        raise ReturnError("返却データのファイルではありません")
    problems: list[str] = []
    signed = sealed.verify_signature(header, audit_public_key)
    if not signed:
        problems.append("ヘッダーの署名がこのインスタンスの監査鍵で検証できません")
    recorded = header.meta.get("fingerprint") or {}
    seq = int(recorded.get("audit_seq") or 0)
    live = fingerprint(session, vault, seq)
    for key, label in LABELS.items():
        if recorded.get(key) != live.get(key):
            if key in ("active", "removed", "disposed", "numbers"):
                problems.append(
                    f"{label}が一致しません（アーカイブ {recorded.get(key)}、現在 {live.get(key)}）"
                )
            else:
                problems.append(f"{label}が一致しません")
    return Verification(not problems, problems, header.meta, signed)


# -- the portal: request, build in the background, download ----------------------------------------
def request_archive(
    session: Session,
    vault: Vault,
    actor: Actor,
    purpose: str,
    public_key_text: str,
    totp_code: str | None,
) -> ReturnArchive:
    """A ClientStaff user asks for the archive (TOTP code again, purpose); the build is a job."""
    try:
        policy.require(actor, "can_export", VIEW)
        purpose = check_purpose(purpose)
        try:
            recipient = sealed.load_public(public_key_text or "")
        except sealed.SealedError as exc:
            raise ReturnError(f"公開鍵: {exc}") from exc
        step_up.verify_step_up(session, vault, actor, totp_code)
    except Exception as exc:
        session.rollback()
        trail.record(
            session,
            actor,
            "return.export",
            object_type="return_archive",
            purpose=(purpose or "").strip() or None,
            outcome="denied",
            details={"reason": str(exc)},
            commit=True,
        )
        raise
    row = ReturnArchive(
        id=uuid.uuid4(),
        requested_by_id=actor.user_id,
        requested_by_name=actor.name,
        purpose=purpose,
        recipient_public=recipient.text(),
        recipient_fingerprint=recipient.fingerprint,
        status="pending",
    )
    session.add(row)
    session.flush()
    trail.record(
        session,
        actor,
        "return.requested",
        object_type="return_archive",
        object_ids=[row.id],
        purpose=purpose,
        details={"recipient": recipient.fingerprint},
    )
    session.commit()
    return row


def build_requested(
    session: Session,
    vault: Vault,
    archive_id: uuid.UUID,
    folder: str | Path,
    *,
    client_name: str,
    audit_public_pem: bytes,
    checkpoint_file: str | None,
) -> ReturnArchive:
    """The job: build an archive the portal requested (idempotent: a ready one stays)."""
    row = session.get(ReturnArchive, archive_id)
    if row is None or row.status == "ready":
        return row
    out = Path(folder) / f"return-{row.id.hex}{SUFFIX}"
    out.unlink(missing_ok=True)  # a previous attempt's file (ciphertext) is replaced
    # The server's own process, like the command line: the request was authorised (ClientStaff,
    # TOTP code, purpose) and audited when it was made.
    actor = policy.ShellActor(name=f"job:return-archive（{row.requested_by_name}）")
    try:
        result = export_archive(
            session,
            vault,
            actor,
            out,
            sealed.load_public(row.recipient_public),
            row.purpose,
            client_name=client_name,
            audit_public_pem=audit_public_pem,
            checkpoint_file=checkpoint_file,
            archive_id=row.id,
            authorized=True,
        )
    except Exception as exc:
        session.rollback()
        row = session.get(ReturnArchive, archive_id)
        row.status = "failed"
        row.error = (str(exc) if isinstance(exc, ReturnError) else type(exc).__name__)[:400]
        row.finished_at = utcnow()
        session.commit()
        raise
    row = session.get(ReturnArchive, archive_id)
    row.status = "ready"
    row.file_name = str(result.path)
    row.size_bytes = result.size
    row.sha256 = result.sha256
    row.person_count = result.counts.get("people")
    row.number_count = result.counts.get("numbers")
    row.audit_seq = result.audit_seq
    row.finished_at = utcnow()
    row.error = None
    session.commit()
    return row
