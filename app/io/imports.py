"""Onboarding import: the numbers the client already collected (spec 5.1-1②), from its CSV.

One streaming pass over the file, in batches, inside one transaction:

1. each record is checked field by field (the same rules as the portal's forms, ``app.core.fields``)
   and against the rest of the file (a number or a 扶養者コード / 委員番号 twice);
2. each batch is checked against what was stored before the import, in three indexed queries
   (numbers by blind index, people by 職員番号 / 委員番号, which of those have a number) —
   never by loading a table;
3. while no problem has been found, the batch is encrypted and appended (binary COPY on
   PostgreSQL, on a second thread, so the server writes batch k while Python reads batch k+1).

At the end, dependents whose employee came later in the file are linked, and the transaction
commits only if the whole file was clean. Any problem, a crash or a kill leaves the database as
it was: the outcome is that of "validate everything, then write", with one read of the file.
``dry_run`` (and the portal's preview) runs the same checks without writing.

Memory grows with the file only by what the cross-row checks need: 8 bytes per number and per
扶養者コード / 委員番号 seen (``app.io.tokens``, checked a batch at a time), and the list of
dependents waiting for an employee further down.

An employee new in this import gets an id derived from its 職員番号 with a key made for this
import and then forgotten (HMAC-SHA256), so a dependent finds its employee's id without a
lookup table; to anyone else the id is as random as a UUID4.

A row whose number is already stored for the same person (same 扶養者コード / 委員番号) is
skipped and counted; a stored person without a number gets it ("attached"); a number stored for
someone else, or a different number for a stored person, is a problem — numbers are replaced
only through the records screen, which keeps the old one (``app.people.records.replace_number``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from psycopg import errors as pg_errors
from sqlalchemy import String, any_, bindparam, cast, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.core import fields as F
from app.core import jptime, logsafe
from app.core.actor import Actor
from app.io.bulk import (
    BulkWriter,
    Sealer,
    collect_young,
    collector_paused,
    is_postgres,
    time_ordered_id,
)
from app.io.layouts import STAFF, Layout
from app.models import MyNumberRecord, Person, PersonKind, utcnow
from app.people import registry
from app.platform.csvio import CsvFormatError, CsvReader, is_blank, unneutralise
from app.vault.envelopes import Vault, hold_kek

BATCH = 4000
MAX_PROBLEMS_KEPT = 100_000
SOURCE = "import"
# A literal, not a parameter: PostgreSQL may reuse a generic plan for a prepared statement, and
# only a literal lets it prove that the partial unique index (WHERE status = 'active') applies.
ACTIVE = literal_column("'active'")


@dataclass(frozen=True)
class Problem:
    """One reason a row cannot be imported: ``行 N: 項目: 理由``."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"行 {self.line}: {self.field}: {self.reason}"


@dataclass
class ImportReport:
    layout: str
    dry_run: bool
    encoding: str | None = None
    rows: int = 0
    created: int = 0
    attached: int = 0
    skipped: int = 0
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: p.line)

    def counts(self) -> dict:
        """What the audit log may say: counts only."""
        return {
            "layout": self.layout,
            "rows": self.rows,
            "created": self.created,
            "attached": self.attached,
            "skipped": self.skipped,
            "problems": self.problem_count,
            "dry_run": self.dry_run,
        }

    def summary(self) -> str:
        if not self.ok:
            return (
                f"{self.problem_count} 件の問題があるため、何も取り込んでいません"
                f"（{self.rows} 行を確認）"
            )
        verb = "取り込めます" if self.dry_run else "取り込みました"
        return (
            f"{self.rows} 行を確認し、{verb}: 新規 {self.created} 人、番号の追加 "
            f"{self.attached} 人、登録済みのためスキップ {self.skipped} 人"
        )


@dataclass(slots=True)
class _Row:
    line: int
    kind: str
    code: str
    seq: int
    name: str
    kana: str | None
    birth: dt.date
    number: str
    index: bytes
    relation: str | None
    address: str | None
    postal: str | None
    ended_on: dt.date | None
    action: str = ""
    person_id: uuid.UUID | None = None
    head_id: uuid.UUID | None = None


class _Pipeline:
    """Writes batches on one worker thread, in order, in the session's transaction.

    The main thread never touches the session while a write runs (``wait`` first), so the
    connection is only ever used by one thread at a time.
    """

    def __init__(self, writer: BulkWriter, threaded: bool):
        self.writer = writer
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mnv-import") if threaded else None
        self._pending: Future | None = None

    def _write(self, tables: list[tuple[str, list[tuple]]]) -> None:
        for name, rows in tables:
            self.writer.write(name, rows)

    def submit(self, tables: list[tuple[str, list[tuple]]]) -> None:
        self.wait()
        if self._pool is None:
            self._write(tables)
        else:
            self._pending = self._pool.submit(self._write, tables)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class _Run:
    """One import: the cross-row state, the checks, the writes."""

    def __init__(
        self,
        session: Session,
        vault: Vault,
        layout: Layout,
        report: ImportReport,
        write: bool,
    ):
        self.session = session
        self.vault = vault
        self.layout = layout
        self.report = report
        self.write = write
        self.postgres = is_postgres(session)
        if write:
            hold_kek(session)  # no rotation or retirement until this commits
        self.sealer = Sealer(vault)
        self.pipeline = _Pipeline(BulkWriter(session), threaded=self.postgres) if write else None
        # While the worker thread writes, the checks read what was committed before the
        # import through their own connection (PostgreSQL); in-file checks cover the rest.
        self.reader = session.get_bind().connect() if (write and self.postgres) else None
        if self.reader is not None:
            self.reader.execute(text("SET LOCAL enable_seqscan = off"))
        self.now = utcnow()
        self.today = jptime.today_jst()
        self.staff = layout.kind == STAFF
        self.kinds = layout.person_kinds
        # Keyed once and copied per employee (see ``employee_id``); the key itself is not kept.
        self.id_mac = hmac.new(secrets.token_bytes(32), digestmod="sha256")
        # Numbers and 扶養者コード / 委員番号 seen so far, as 64-bit tokens (see
        # ``number_token`` and ``key_token``); a batch's are checked together (``_repeats``).
        # Imported here: NumPy costs every other process (portal, workers, CLI) 20 MB for nothing.
        from app.io.tokens import TokenRuns

        self.seen_numbers = TokenRuns()
        self.seen_keys = TokenRuns()
        self.number_mask = secrets.randbits(40)
        self.key_salt = secrets.token_bytes(16)
        self.new_numbers: list[tuple[int, int]] = []  # (line, token) since the last batch
        self.new_keys: list[tuple[int, int, str, int]] = []  # (line, token, code, seq)
        self.since_check = 0  # rows read since then
        # Dependents whose employee was neither stored nor earlier in the file.
        self.waiting: list[tuple[int, str, uuid.UUID | None]] = []
        self.plan: list[tuple[str, int, Callable, tuple, str]] = []
        self.width = 0

    def close(self) -> None:
        try:
            if self.pipeline is not None:
                self.pipeline.close()
        finally:
            if self.reader is not None:
                self.reader.close()

    def problem(self, line: int, field_label: str, reason: str) -> None:
        self.report.add(Problem(line, field_label, reason))

    def number_token(self, number: str) -> int:
        """A number as a 40-bit integer, exact (12 digits < 2^40, so two numbers are never
        taken for one), masked with this import's random bits so that the list in memory is not
        a list of numbers."""
        return int(number) ^ self.number_mask

    def key_token(self, code: str, seq: int) -> int:
        """A 扶養者コード / 委員番号 as a 64-bit keyed hash. The key is this import's own, so
        a collision (about 1 in 4 x 10^7 at a million rows) would not repeat on a second run;
        its worst outcome is a refused file, never a wrong write."""
        digest = hashlib.blake2b(
            f"{code}\x00{seq}".encode(), digest_size=8, key=self.key_salt
        ).digest()
        return int.from_bytes(digest, "big")

    def _repeats(self) -> set[int]:
        """Add the batch's tokens to the seen sets; report numbers and codes that came before
        (earlier in the file), and return those rows' lines."""
        lines: set[int] = set()
        self.since_check = 0
        if self.new_numbers:
            earlier = self.seen_numbers.add([token for _, token in self.new_numbers])
            label = self.layout.label_of("number")
            for (line, _), repeated in zip(self.new_numbers, earlier, strict=True):
                if repeated:
                    self.problem(line, label, "ファイル内の別の行と同じ個人番号です")
                    lines.add(line)
            self.new_numbers = []
        if self.new_keys:
            earlier = self.seen_keys.add([token for _, token, _, _ in self.new_keys])
            for (line, _, code, seq), repeated in zip(self.new_keys, earlier, strict=True):
                if not repeated:
                    continue
                if self.staff:
                    self.problem(
                        line,
                        self.layout.label_of("dependent_code"),
                        f"扶養者コード {code}-{seq:02d} がファイル内で重複しています",
                    )
                else:
                    self.problem(
                        line,
                        self.layout.label_of("code"),
                        f"委員番号 {code} がファイル内で重複しています",
                    )
                lines.add(line)
            self.new_keys = []
        return lines

    def employees_seen(self, codes: list[str]) -> list[bool]:
        """Whether each 職員番号's employee (-00) was read so far in the file."""
        if not codes:
            return []
        found = self.seen_keys.contains([self.key_token(code, 0) for code in codes])
        return found.tolist()

    def employee_id(self, code: str) -> uuid.UUID:
        """The id of an employee new in this import (see the module docstring)."""
        mac = self.id_mac.copy()
        mac.update(code.encode("utf-8"))
        return uuid.UUID(bytes=mac.digest()[:16], version=4)

    # -- header -------------------------------------------------------------------------
    def read_header(self, line: int, cells: list[str]) -> bool:
        expected = self.layout.headers
        labels = [c.strip() for c in cells]
        if not set(labels) & set(expected):
            self.problem(
                line, "見出し", "見出し行がありません（1行目は「" + ",".join(expected) + "」です）"
            )
            return False
        ok = True
        for position, label in enumerate(labels, start=1):
            if label not in expected:
                shown = logsafe.scrub(label)[:30]
                self.problem(line, "見出し", f"列 {position} の「{shown}」はこの様式にありません")
                ok = False
            elif labels.index(label) != position - 1:
                self.problem(line, "見出し", f"「{label}」が2回あります")
                ok = False
        for label in expected:
            if label not in labels:
                self.problem(line, "見出し", f"「{label}」の列がありません")
                ok = False
        if not ok:
            return False
        self.width = len(labels)
        today = self.today
        cleaners: dict[str, tuple[Callable, tuple]] = {
            "code": (F.clean_code, ()),
            "name": (F.clean_name, ()),
            "name_kana": (F.clean_kana, ()),
            "birth_date": (F.clean_date, (True, False, today)),
            "number": (F.clean_number, ()),
            "relation": (F.clean_relation, ()),
            "address": (F.clean_address, ()),
            "postal_code": (F.clean_postal_code, ()),
            "ended_on": (F.clean_date, (False, True, today)),
            "kubun": (F.clean_kubun, ()),
        }
        for key, label in self.layout.columns:
            if key in cleaners:
                func, args = cleaners[key]
                self.plan.append((key, labels.index(label), func, args, label))
        self.dependent_code_at = (
            labels.index(self.layout.label_of("dependent_code")) if self.staff else None
        )
        return True

    # -- one record ---------------------------------------------------------------------
    def parse(self, line: int, cells: list[str]) -> _Row | None:
        """Check one record on its own and against the rest of the file."""
        if len(cells) != self.width:
            self.problem(line, "列数", f"見出しは{self.width}列ですが、この行は{len(cells)}列です")
            return None
        values: dict[str, object] = {}
        bad = False
        for key, index, func, args, label in self.plan:
            cell = cells[index]
            if cell[:1] == "'":
                cell = unneutralise(cell)
            try:
                values[key] = func(cell, *args)
            except F.FieldError as exc:
                self.problem(line, label, str(exc))
                bad = True
                values[key] = None
        code = values["code"]
        label_of = self.layout.label_of
        seq = 0
        kind = PersonKind.EXTERNAL
        if self.staff:
            try:
                seq = F.clean_dependent_code(unneutralise(cells[self.dependent_code_at]), code)
            except F.FieldError as exc:
                self.problem(line, label_of("dependent_code"), str(exc))
                bad = True
                seq = None
            is_self = values.get("kubun")
            if seq is not None and is_self is not None and is_self != (seq == 0):
                self.problem(
                    line,
                    label_of("kubun"),
                    "扶養者コードと一致しません（本人は -00、扶養親族は -01 以降）",
                )
                bad = True
            kind = PersonKind.EMPLOYEE if seq == 0 else PersonKind.DEPENDENT

        # Repeats within the file are found a batch at a time (``_repeats``), for bad rows too.
        number = values["number"]
        self.since_check += 1
        if number is not None:
            self.new_numbers.append((line, self.number_token(number)))
        if code is not None and seq is not None:
            self.new_keys.append((line, self.key_token(code, seq), code, seq))
        if bad:
            return None
        index = self.sealer.blind_index(number)
        get = values.get
        return _Row(
            line,
            kind,
            code,
            seq,
            values["name"],
            get("name_kana"),
            values["birth_date"],
            number,
            index,
            get("relation"),
            get("address"),
            get("postal_code"),
            get("ended_on"),
        )

    # -- one batch ----------------------------------------------------------------------
    def _query(self, statement):
        if self.reader is not None:
            return self.reader.execute(statement)
        return self.session.execute(statement)

    def check_batch(self, rows: list[_Row]) -> None:
        """Compare a batch with the file so far and with what was stored before: three
        indexed queries."""
        repeated = self._repeats()
        if repeated:
            rows = [row for row in rows if row.line not in repeated]
        if not rows:
            return
        postgres = self.postgres
        holders: dict[bytes, uuid.UUID] = dict(
            self._query(
                select(MyNumberRecord.blind_index, MyNumberRecord.person_id).where(
                    MyNumberRecord.status == ACTIVE,
                    _any(postgres, MyNumberRecord.blind_index, [r.index for r in rows]),
                )
            ).all()
        )
        stored: dict[tuple[str, int], tuple[uuid.UUID, str, bool]] = {}
        for pid, kind, code, seq in self._query(
            select(Person.id, Person.kind, Person.code, Person.dependent_seq).where(
                Person.status == ACTIVE,
                Person.kind.in_(self.kinds),
                _any(postgres, Person.code, list({r.code for r in rows})),
            )
        ):
            stored[(code, seq if kind != PersonKind.EXTERNAL else 0)] = (pid, kind, False)
        if stored:
            numbered = set(
                self._query(
                    select(MyNumberRecord.person_id).where(
                        MyNumberRecord.status == ACTIVE,
                        _any(postgres, MyNumberRecord.person_id, [v[0] for v in stored.values()]),
                    )
                ).scalars()
            )
            stored = {k: (v[0], v[1], v[0] in numbered) for k, v in stored.items()}

        number_label = self.layout.label_of("number")
        report = self.report
        orphans: list[_Row] = []  # new dependents whose employee is not stored
        for row in rows:
            holder = holders.get(row.index)
            existing = stored.get((row.code, row.seq))
            if holder is not None:
                if existing is not None and holder == existing[0]:
                    row.action, row.person_id = "skip", holder
                    report.skipped += 1
                else:
                    self.problem(
                        row.line, number_label, "この個人番号は既に別の人物に登録されています"
                    )
                continue
            if existing is not None:
                if existing[2]:
                    self.problem(
                        row.line,
                        number_label,
                        "登録済みの人物に別の個人番号があります"
                        "（番号の変更は「人物の管理」で行ってください）",
                    )
                    continue
                row.action, row.person_id = "attach", existing[0]
                report.attached += 1
                continue
            row.action = "new"
            report.created += 1
            if row.kind == PersonKind.EMPLOYEE:
                row.person_id = self.employee_id(row.code)
                continue
            row.person_id = uuid.uuid4()
            if row.kind != PersonKind.DEPENDENT:
                continue
            head = stored.get((row.code, 0))
            if head is not None and head[1] == PersonKind.EMPLOYEE:
                row.head_id = head[0]  # stored before this import
            else:
                orphans.append(row)
        for row, seen in zip(orphans, self.employees_seen([r.code for r in orphans]), strict=True):
            if seen:
                row.head_id = self.employee_id(row.code)  # new, earlier in the file
            else:
                # Neither stored nor (yet) in the file: it must come further down.
                self.waiting.append((row.line, row.code, row.person_id))
        if self.write and report.ok:
            self.write_batch(rows)

    def write_batch(self, rows: list[_Row]) -> None:
        people_rows: list[tuple] = []
        key_rows: list[tuple] = []
        record_rows: list[tuple] = []
        attach: list[_Row] = []
        sealer = self.sealer
        seal = sealer.seal_field
        now = self.now
        kek_version = sealer.kek_version
        for row in rows:
            if row.action != "new":
                if row.action == "attach":
                    attach.append(row)
                continue
            pid = row.person_id
            aead, wrapped = sealer.new_person_key(pid)
            address_enc = (
                seal(aead, "person", "address_enc", pid, row.address) if row.address else None
            )
            people_rows.append(
                (
                    pid,
                    row.kind,
                    row.code,
                    row.head_id,
                    row.seq,
                    row.relation,
                    row.name,
                    row.kana,
                    row.birth,
                    row.postal,
                    address_enc,
                    row.ended_on,
                    "active",
                    now,
                    now,
                )
            )
            key_rows.append((time_ordered_id(), pid, 1, kek_version, wrapped, now))
            record_id = time_ordered_id()
            record_rows.append(
                (
                    record_id,
                    pid,
                    seal(aead, "my_number_record", "ciphertext", record_id, row.number),
                    row.index,
                    row.number[-4:],
                    "active",
                    SOURCE,
                    now,
                )
            )
        if attach:
            # Rare (people stored without a number): through the ordinary service.
            self.pipeline.wait()
            for row in attach:
                person = self.session.get(Person, row.person_id)
                registry.register_number(self.session, self.vault, person, row.number, SOURCE)
            self.session.flush()
        self.pipeline.submit(
            [("person", people_rows), ("data_key", key_rows), ("my_number_record", record_rows)]
        )

    # -- end of file --------------------------------------------------------------------
    def finish(self) -> None:
        """Dependents that waited for an employee further down: linked, or a problem."""
        if self.pipeline is not None:
            self.pipeline.wait()
        links = []
        found = self.employees_seen([code for _, code, _ in self.waiting])
        for (line, code, person_id), seen in zip(self.waiting, found, strict=True):
            if seen:
                links.append({"pid": person_id, "head": self.employee_id(code)})
                continue
            self.problem(
                line,
                self.layout.label_of("code"),
                "扶養親族の職員（本人）が、ファイルにも登録済みのデータにもありません",
            )
        if self.write and self.report.ok and links:
            table = Person.__table__
            self.session.execute(
                update(table)
                .where(table.c.id == bindparam("pid"))
                .values(household_head_id=bindparam("head")),
                links,
            )


class ImportConflict(RuntimeError):
    """A concurrent change won the race for a unique number (Japanese; nothing imported)."""


def _is_conflict(exc: BaseException) -> bool:
    """A unique violation, whether SQLAlchemy wrapped it or psycopg raised it on the raw
    connection that runs the COPY."""
    return isinstance(exc, (IntegrityError, pg_errors.UniqueViolation))


def _any(postgres: bool, column, values: list):
    """``column IN values``. On PostgreSQL: one array parameter, written as an array literal in
    C-speed string joins (psycopg's per-element list adaptation costs more than the query)."""
    if not postgres:
        return column.in_(values)
    if not values:
        literal = "{}"
    elif isinstance(values[0], bytes):
        literal = "{" + ",".join(["\\\\x" + v.hex() for v in values]) + "}"
    elif isinstance(values[0], uuid.UUID):
        literal = "{" + ",".join(map(str, values)) + "}"
    else:
        # Codes passed clean_code: letters, digits, - _ . only; quoted so "NULL" stays text.
        literal = '{"' + '","'.join(values) + '"}'
    return column == any_(cast(bindparam(None, literal, type_=String), ARRAY(column.type)))


def import_csv(
    session: Session,
    vault: Vault,
    actor: Actor,
    stream: BinaryIO,
    layout: Layout,
    *,
    encoding: str = "auto",
    dry_run: bool = False,
    filename: str | None = None,
    progress: Callable[[int, bool], None] | None = None,
) -> ImportReport:
    """Check, and unless ``dry_run`` store, every row of a CSV in ``layout``; audited.

    Nothing is stored unless ``report.ok`` (then ``report.committed``). ``progress(rows,
    writing)`` is called after each batch (the CLI prints it).
    """
    policy.require_audited(
        session, actor, "can_import", "Numbers", "numbers.import", object_type="person"
    )
    missing = layout.missing_for_import()
    if missing:
        labels = "、".join(layout.label_of(m) for m in missing)
        raise ValueError(f"様式「{layout.name}」は取り込みに使えません（必要な列: {labels}）")
    report = ImportReport(layout=layout.name, dry_run=dry_run)
    details: dict = {"layout": layout.name}
    if filename:
        details["file"] = logsafe.scrub(PurePath(filename).name)[:100]
    write = not dry_run
    if write:
        # Fail closed: no audit event, no import. A kill after this leaves only this event.
        trail.record(
            session,
            actor,
            "numbers.import.begin",
            object_type="person",
            details=details,
            commit=True,
        )
        if is_postgres(session):
            session.execute(text("SET LOCAL enable_seqscan = off"))
        else:
            # Take SQLite's write lock now, not at the first INSERT after many reads.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    run = _Run(session, vault, layout, report, write)
    try:
        with collector_paused():
            _scan(run, stream, encoding, progress)
            run.finish()
        run.close()
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the first error is the one to report
            run.close()
        session.rollback()
        if _is_conflict(exc):
            raise ImportConflict(
                "取り込み中に同じ個人番号・人物が別の処理で登録されました。何も取り込んでいません。"
                "もう一度実行してください"
            ) from None
        raise
    report.problems = report.sorted_problems()
    if write and report.ok:
        trail.record(
            session,
            actor,
            "numbers.import",
            object_type="person",
            details={**details, **report.counts()},
        )
        session.commit()
        report.committed = True
        return report
    session.rollback()
    trail.record(
        session,
        actor,
        "numbers.import" if write else "numbers.import_check",
        object_type="person",
        outcome="success" if report.ok else "failure",
        details={**details, **report.counts()},
        commit=True,
    )
    return report


def _scan(
    run: _Run,
    stream: BinaryIO,
    encoding: str,
    progress: Callable[[int, bool], None] | None,
) -> None:
    report = run.report
    try:
        reader = CsvReader(stream, encoding)
        report.encoding = reader.encoding
        batch: list[_Row] = []
        header_ok = None
        for line, cells in reader:
            if header_ok is None:
                header_ok = run.read_header(line, cells)
                if not header_ok:
                    return
                continue
            if is_blank(cells):
                continue
            report.rows += 1
            row = run.parse(line, cells)
            if row is not None:
                batch.append(row)
            if run.since_check >= BATCH:
                run.check_batch(batch)
                batch = []
                collect_young()
                if progress:
                    progress(report.rows, run.write and report.ok)
        run.check_batch(batch)
        if header_ok is None:
            run.problem(1, "見出し", "見出し行がありません")
        elif report.rows == 0:
            run.problem(2, "ファイル", "データ行がありません")
    except CsvFormatError as exc:
        run.problem(exc.line, "ファイル", exc.reason)
