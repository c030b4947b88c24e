"""Target lists (spec 5.2-6): the client's CSV of the people to collect from.

The portal offers a template per campaign kind with the fields the operator needs (氏名, カナ,
生年月日, 郵便番号, 住所, メール, 職員番号/委員番号, 扶養親族 rows for employees, and the
channel), a row of allowed values (``※``, skipped on upload) and sample rows (``記入例…``,
refused on upload so a forgotten sample is never loaded). An upload is validated as a whole,
in one pass, and every problem is reported as ``行 N: 項目: 理由`` (rows numbered as a
spreadsheet shows them, header = 行 1): a row with a bad field is still checked field by
field and against the other rows (a dependent whose employee row is missing is reported
together with its own typo, not after the typo is fixed); if any row is bad, nothing is
loaded. Loading finds or creates the people and issues one request per
household (employees) or per person (external members), in one transaction.

A target list never needs a number: a cell holding a 12-digit run is refused.

Encoding: UTF-8 (with or without BOM) or CP932 (Excel's Shift_JIS), detected with
charset-normalizer when the bytes are not valid UTF-8. (The number import, ``app.io.imports``,
reads its files with ``app.platform.csvio``; the two could share it.)
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from charset_normalizer import from_bytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import policy
from app.audit import trail
from app.collection import campaigns
from app.core import jptime, mynumber
from app.core.actor import Actor
from app.core.fields import has_hidden_characters
from app.models import (
    Campaign,
    CampaignKind,
    Channel,
    CollectionRequest,
    Person,
    PersonKind,
    RequestStatus,
)
from app.people import registry

MAX_ROWS = 200_000
# Told (lines checked, lines in the file) while a file is checked.
Progress = Callable[[int, int], None]
EMPLOYEE_HEADER = [
    "職員番号",
    "本人区分",
    "続柄",
    "氏名",
    "氏名カナ",
    "生年月日",
    "郵便番号",
    "住所",
    "メールアドレス",
    "送付方法",
]
EXTERNAL_HEADER = [
    "委員番号",
    "氏名",
    "氏名カナ",
    "生年月日",
    "郵便番号",
    "住所",
    "メールアドレス",
    "送付方法",
]
HEADERS = {CampaignKind.EMPLOYEE: EMPLOYEE_HEADER, CampaignKind.EXTERNAL: EXTERNAL_HEADER}
FIELD_HELP = {
    "職員番号": "必須。扶養親族の行にも、扶養者（役職員）の職員番号を入れます",
    "委員番号": "必須",
    "本人区分": "必須。本人 または 扶養親族。扶養親族の行は、その役職員の行と同じファイルに入れます",
    "続柄": "扶養親族の行で必須（例: 妻、子）",
    "氏名": "必須。戸籍・住民票どおりの字体で",
    "氏名カナ": "任意。全角カタカナ",
    "生年月日": "本人の行で必須（提出フォームでの本人確認に使います）。1985/01/02、昭和60年1月2日 など",
    "郵便番号": "郵送の場合は必須。123-4567",
    "住所": "郵送の場合は必須",
    "メールアドレス": "メールの場合は必須",
    "送付方法": "メール または 郵送。空欄なら、メールアドレスがあればメール、なければ郵送",
}
SELF_VALUES = {"本人"}
DEPENDENT_VALUES = {"扶養親族", "扶養家族", "家族"}
CHANNEL_VALUES = {"メール": Channel.EMAIL, "郵送": Channel.POST, "": None}
# Spec 5.2-3: e-mail instead of the kit is for 役職員 and their dependents only.
EXTERNAL_KIT_ONLY = (
    "外部委員等には収集キットを郵送します（メールでの案内は役職員とその親族に限ります）"
)
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_KANA = re.compile(r"^[\u30a0-\u30ff\u3000 ・]+$")


class TargetFileError(ValueError):
    """The file was refused; ``problems`` lists every one as 行 N: 項目: 理由."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class TargetRow:
    line: int
    role: str  # self | dependent
    code: str
    name: str
    kana: str | None
    birth_date: dt.date | None
    relation: str | None = None
    postal_code: str | None = None
    address: str | None = None
    email: str | None = None
    channel: str | None = None
    valid: bool = True


@dataclass
class Household:
    head: TargetRow
    dependents: list[TargetRow] = field(default_factory=list)


@dataclass
class TargetFile:
    kind: str
    encoding: str
    households: list[Household]
    problems: list[str]

    @property
    def rows(self) -> int:
        return sum(1 + len(h.dependents) for h in self.households)


@dataclass
class LoadResult:
    households: int
    people_created: int
    people_matched: int
    requests_issued: int
    skipped_already_requested: int
    replaced_requests: int
    already_registered: int
    emails: int
    posts: int
    # 行 N: 項目 for every stored contact the list disagrees with: kept as stored (see
    # _find_or_create_head), shown to the uploading ClientStaff user, never the values.
    contact_differs: list[str] = field(default_factory=list)


INSTRUCTION_MARK = "※"
SAMPLE_MARK = "記入例"
SAMPLE_ROWS = {
    CampaignKind.EMPLOYEE: [
        {
            "職員番号": "記入例001",
            "本人区分": "本人",
            "氏名": "見本 太郎",
            "氏名カナ": "ミホン タロウ",
            "生年月日": "1985/01/02",
            "郵便番号": "100-0001",
            "住所": "東京都千代田区千代田1-1",
            "メールアドレス": "taro@example.jp",
            "送付方法": "メール",
        },
        {
            "職員番号": "記入例001",
            "本人区分": "扶養親族",
            "続柄": "子",
            "氏名": "見本 花子",
            "氏名カナ": "ミホン ハナコ",
            "生年月日": "2015/03/04",
        },
    ],
    CampaignKind.EXTERNAL: [
        {
            "委員番号": "記入例001",
            "氏名": "見本 一郎",
            "氏名カナ": "ミホン イチロウ",
            "生年月日": "昭和45年5月6日",
            "郵便番号": "530-0001",
            "住所": "大阪府大阪市北区梅田1-1-1",
            "送付方法": "郵送",
        }
    ],
}


def template_csv(kind: str) -> bytes:
    """The template, UTF-8 with BOM (Excel opens it as UTF-8): the header, one row giving
    each column's rule and allowed values under it (skipped on upload: its first cell starts
    with ※), and sample rows (refused on upload: their code starts with 記入例)."""
    if kind not in HEADERS:
        raise ValueError("対象の種類が不正です")
    header = HEADERS[kind]
    rules = [FIELD_HELP[h] for h in header]
    rules[0] = f"{INSTRUCTION_MARK}この行と記入例の行は削除してください。{header[0]}: {rules[0]}"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow(rules)
    for sample in SAMPLE_ROWS[kind]:
        writer.writerow([sample.get(h, "") for h in header])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def decode(data: bytes) -> tuple[str, str]:
    """The text and its encoding: UTF-8 with BOM, UTF-8, or CP932 (charset-normalizer)."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise TargetFileError(
                ["行 1: ファイル: UTF-8（BOM 付き）として読めない文字が含まれています"]
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=["cp932", "utf_8"]).best()
    if best is not None and best.encoding == "cp932":
        try:
            return data.decode("cp932"), "cp932"
        except UnicodeDecodeError:
            pass
    raise TargetFileError(
        [
            "行 1: ファイル: 文字コードを判別できません（UTF-8 または Shift_JIS（CP932）で保存してください）"
        ]
    )


def _text(value: str | None) -> str:
    return (value or "").strip().strip("\u3000").strip()


def validate(
    session: Session | None, kind: str, data: bytes, on_progress: Progress | None = None
) -> TargetFile:
    """Check every row in one pass (and, with a session, against the people already stored).

    Nothing stops the pass early but an unreadable file: a header with missing columns is
    reported and the rows are still checked on the columns present; a row with a bad field
    still takes part in the cross-row checks (its code, its employee row).

    ``on_progress(done, total)`` is told every hundredth of the lines (and at the end), for the
    upload job's progress bar; the session has nothing pending when it is called."""
    if kind not in HEADERS:
        raise TargetFileError(["行 1: 対象: 役職員 または 外部委員等 を選んでください"])
    if not data:
        raise TargetFileError(["行 1: ファイル: 空のファイルです"])
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    total_lines = max(1, text.count("\n") + (0 if text.endswith("\n") else 1) - 1)
    every = max(1, total_lines // 100)
    problems: list[str] = []
    try:
        header = next(reader)
    except StopIteration:
        raise TargetFileError(["行 1: ヘッダー: 見出しの行がありません"]) from None
    except csv.Error as exc:
        raise TargetFileError([f"行 1: ヘッダー: CSV として読めません（{exc}）"]) from None
    header = [_text(h) for h in header]
    expected = HEADERS[kind]
    missing = [h for h in expected if h not in header]
    problems.extend(_header_problems(header, expected, missing))
    index = {name: header.index(name) for name in expected if name in header}
    households: list[Household] = []
    by_code: dict[str, tuple[int, Household]] = {}
    dependents_waiting: list[TargetRow] = []
    label = "職員番号" if kind == CampaignKind.EMPLOYEE else "委員番号"
    line = 1
    try:
        for cells in reader:
            line += 1
            if on_progress is not None and (line - 1) % every == 0:
                on_progress(min(line - 1, total_lines), total_lines)
            if not any(_text(c) for c in cells):
                continue  # a blank row a spreadsheet left behind
            if _text(cells[0]).startswith(INSTRUCTION_MARK):
                continue  # the template's row of allowed values
            if line - 1 > MAX_ROWS:
                problems.append(f"行 {line}: ファイル: 1ファイル {MAX_ROWS:,} 行までです")
                break
            if len(cells) != len(header):
                problems.append(
                    f"行 {line}: 行全体: 列の数（{len(cells)}）が見出し（{len(header)}）と一致しません"
                )
                continue
            values = {n: _text(cells[index[n]]) if n in index else "" for n in expected}
            row_problems: list[str] = []
            row = _row(kind, line, values, row_problems)
            # A missing column was reported once on 行 1, not again on every row.
            problems.extend(p for p in row_problems if _field_of(p) not in missing)
            if row is None or not row.code:
                continue
            if row.role == "self":
                if row.code in by_code:
                    first_line = by_code[row.code][0]
                    problems.append(f"行 {line}: {label}: 行 {first_line} と重複しています")
                    continue
                household = Household(row)
                by_code[row.code] = (line, household)
                households.append(household)
            else:
                dependents_waiting.append(row)
    except csv.Error as exc:
        problems.append(f"行 {line}: 行全体: CSV として読めません（{exc}）")
    for dep in dependents_waiting:
        owner = by_code.get(dep.code)
        if owner is None:
            problems.append(
                f"行 {dep.line}: 職員番号: 扶養者（本人区分「本人」の行）がこのファイルにありません"
            )
            continue
        twin = next(
            (
                d
                for d in owner[1].dependents
                if d.name and d.name == dep.name and d.birth_date == dep.birth_date
            ),
            None,
        )
        if twin is not None:
            problems.append(f"行 {dep.line}: 氏名: 行 {twin.line} と同じ扶養親族です")
            continue
        owner[1].dependents.append(dep)
    if not households and not problems:
        problems.append("行 2: データ: 対象者の行がありません")
    if session is not None:
        _check_against_stored(session, kind, households, problems)
    problems.sort(key=lambda p: int(re.match(r"行 (\d+)", p).group(1)))
    if on_progress is not None:
        on_progress(total_lines, total_lines)
    return TargetFile(kind, encoding, households, problems)


def _header_problems(header: list[str], expected: list[str], missing: list[str]) -> list[str]:
    unknown = [h for h in header if h and h not in expected]
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    if not (missing or unknown or duplicated):
        return []
    reasons = []
    if missing:
        reasons.append("不足している列: " + "、".join(missing))
    if unknown:
        reasons.append("不明な列: " + "、".join(unknown))
    if duplicated:
        reasons.append("重複した列: " + "、".join(duplicated))
    return [f"行 1: ヘッダー: {'／'.join(reasons)}（テンプレートの見出し: {','.join(expected)}）"]


def _field_of(problem: str) -> str:
    """The 項目 of a ``行 N: 項目: 理由`` problem."""
    return problem.split(": ", 2)[1]


def _row(kind: str, line: int, cells: dict[str, str], problems: list[str]) -> TargetRow | None:
    """One row checked field by field; every problem of the row is added to ``problems``
    (one per field: the first says what to fix). The row comes back even when a field is
    bad, so that the cross-row checks still see it (``valid`` says whether it could load);
    None only when its 本人区分 is unknown (which fields apply depends on it)."""
    bad_fields: set[str] = set()

    def bad(field_name: str, reason: str) -> None:
        if field_name not in bad_fields:  # a value refused once is never echoed after
            bad_fields.add(field_name)
            problems.append(f"行 {line}: {field_name}: {reason}")

    for name, value in cells.items():
        if has_hidden_characters(value):
            # The import's rule (app/core/fields.py): a control, bidi or zero-width character
            # disguises a name on screen and can hide a number from the check below.
            bad(name, "制御文字・書式制御文字が含まれています")
        elif mynumber.contains_number(value):
            bad(name, mynumber.NUMBER_REASON)
    code_label = "職員番号" if kind == CampaignKind.EMPLOYEE else "委員番号"
    code = unicodedata.normalize("NFKC", cells[code_label])
    if code.startswith(SAMPLE_MARK):
        bad(code_label, "テンプレートの記入例の行です（削除してから登録してください）")
    if not code:
        bad(code_label, "入力してください")
    elif len(code) > 50:
        bad(code_label, "50文字以内で入力してください")
    role: str | None = "self"
    if kind == CampaignKind.EMPLOYEE:
        value = cells["本人区分"]
        if value in SELF_VALUES:
            role = "self"
        elif value in DEPENDENT_VALUES:
            role = "dependent"
        elif not value:
            role = None
            bad("本人区分", "入力してください（本人 または 扶養親族）")
        else:
            role = None
            bad("本人区分", f"「{value}」は使えません（本人 または 扶養親族）")
    name = unicodedata.normalize("NFC", cells["氏名"])
    if not name:
        bad("氏名", "入力してください")
    elif len(name) > 100:
        bad("氏名", "100文字以内で入力してください")
    kana = unicodedata.normalize("NFKC", cells["氏名カナ"]) or None
    if kana and (len(kana) > 100 or not _KANA.match(kana)):
        bad("氏名カナ", "全角カタカナで入力してください")
    birth = None
    if cells["生年月日"]:
        try:
            birth = jptime.parse_date(cells["生年月日"])
        except jptime.InvalidDate as exc:
            bad("生年月日", str(exc))
        else:
            if birth > jptime.today_jst():
                bad("生年月日", "未来の日付です")
            elif birth.year < 1900:
                bad("生年月日", "1900年より前の日付です")
    elif role == "self":
        bad("生年月日", "入力してください（提出フォームでの本人確認に使います）")
    relation = None
    if kind == CampaignKind.EMPLOYEE:
        relation = cells["続柄"] or None
        if role == "dependent" and not relation:
            bad("続柄", "扶養親族の行では入力してください")
        elif relation and len(relation) > 20:
            bad("続柄", "20文字以内で入力してください")
    if role is None:  # which other fields apply depends on it: nothing more to say
        return None
    row = TargetRow(line, role, code, name, kana, birth, relation)
    if role == "self":
        postal = unicodedata.normalize("NFKC", cells["郵便番号"])
        postal_digits = re.sub(r"[\s\-‐－ー]", "", postal)
        if postal and not re.fullmatch(r"[0-9]{7}", postal_digits):
            bad("郵便番号", "7桁の数字で入力してください（例: 123-4567）")
        row.postal_code = f"{postal_digits[:3]}-{postal_digits[3:]}" if postal else None
        row.address = unicodedata.normalize("NFC", cells["住所"]) or None
        if row.address and len(row.address) > 200:
            bad("住所", "200文字以内で入力してください")
        email = unicodedata.normalize("NFKC", cells["メールアドレス"]) or None
        if email and (len(email) > 254 or not _EMAIL.match(email)):
            bad("メールアドレス", "メールアドレスの形式が正しくありません")
        row.email = email
        value = cells["送付方法"]
        if value not in CHANNEL_VALUES:
            bad("送付方法", f"「{value}」は使えません（メール または 郵送）")
        else:
            row.channel = CHANNEL_VALUES[value] or (
                Channel.EMAIL if email and kind == CampaignKind.EMPLOYEE else Channel.POST
            )
            if row.channel == Channel.EMAIL and kind != CampaignKind.EMPLOYEE:
                bad("送付方法", EXTERNAL_KIT_ONLY)
            elif row.channel == Channel.EMAIL and not email:
                bad("メールアドレス", "送付方法がメールの場合は入力してください")
            if row.channel == Channel.POST:
                if not row.postal_code:
                    bad("郵便番号", "送付方法が郵送の場合は入力してください")
                if not row.address:
                    bad("住所", "送付方法が郵送の場合は入力してください")
    else:
        for extra in ("郵便番号", "住所", "メールアドレス", "送付方法"):
            if cells[extra]:
                bad(extra, "扶養親族の行には入力しません（役職員本人の行に入力します）")
    row.valid = not bad_fields
    return row


def _stored(session: Session, kind: str, code: str) -> Person | None:
    return session.execute(
        select(Person)
        .where(Person.kind == kind, Person.code == code)
        .order_by(Person.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def _person_kind(kind: str) -> str:
    return PersonKind.EMPLOYEE if kind == CampaignKind.EMPLOYEE else PersonKind.EXTERNAL


def _check_against_stored(
    session: Session, kind: str, households: list[Household], problems: list[str]
) -> None:
    label = "職員番号" if kind == CampaignKind.EMPLOYEE else "委員番号"
    for household in households:
        head = household.head
        stored = _stored(session, _person_kind(kind), head.code)
        if stored is None:
            continue
        if stored.status != "active":
            problems.append(
                f"行 {head.line}: {label}: 廃棄済みの人物です（新しい番号で登録してください）"
            )
        elif stored.birth_date and head.birth_date and stored.birth_date != head.birth_date:
            problems.append(
                f"行 {head.line}: 生年月日: 登録済みの生年月日と異なります（先に人物情報を訂正してください）"
            )


def require_upload(session: Session, actor: Actor, campaign: Campaign) -> None:
    """The one gate before a target file is taken, whether checked now or by a job: the role
    (a refusal audited first) and a campaign still open."""
    policy.require_audited(
        session,
        actor,
        "can_upload",
        campaigns.VIEW,
        "campaign.targets_load",
        object_type="campaign",
        object_ids=[campaign.id],
    )
    if campaign.status != "open":
        raise TargetFileError(["行 1: キャンペーン: 終了したキャンペーンには追加できません"])


def load(
    session: Session,
    vault,
    keyring,
    actor: Actor,
    campaign: Campaign,
    data: bytes,
    dry_run: bool = False,
    on_progress: Progress | None = None,
) -> tuple[TargetFile, LoadResult | None]:
    """Validate, then (unless ``dry_run``) create people and requests. Raises TargetFileError
    with every problem when anything is wrong: nothing is loaded then. Audited; the caller
    commits. ``on_progress`` follows the check (see ``validate``)."""
    require_upload(session, actor, campaign)
    try:
        parsed = validate(session, campaign.kind, data, on_progress)
    except TargetFileError as exc:
        # A file refused at its encoding or header is audited like one refused row by row.
        _audit_rejected(session, actor, campaign, len(exc.problems), None)
        raise
    if parsed.problems:
        _audit_rejected(session, actor, campaign, len(parsed.problems), parsed.encoding)
        raise TargetFileError(parsed.problems)
    if dry_run:
        return parsed, None
    result = LoadResult(0, 0, 0, 0, 0, 0, 0, 0, 0)
    for household in parsed.households:
        result.households += 1
        head = _find_or_create_head(session, vault, campaign.kind, household.head, result)
        if campaign.kind == CampaignKind.EMPLOYEE:
            for dep in household.dependents:
                _find_or_create_dependent(session, vault, head, dep, result)
        already = session.execute(
            select(CollectionRequest.id).where(
                CollectionRequest.campaign_id == campaign.id,
                CollectionRequest.person_id == head.id,
                CollectionRequest.status != RequestStatus.CANCELLED,
            )
        ).first()
        if already is not None:
            result.skipped_already_requested += 1
            continue
        open_elsewhere = session.execute(
            select(func.count())
            .select_from(CollectionRequest)
            .where(
                CollectionRequest.person_id == head.id,
                CollectionRequest.status.in_(RequestStatus.OPEN_FOR_INPUT),
            )
        ).scalar_one()
        result.replaced_requests += int(open_elsewhere)
        if registry.active_record(session, head.id) is not None:
            result.already_registered += 1
        campaigns.issue_request(session, keyring, actor, campaign, head, household.head.channel)
        result.requests_issued += 1
        if household.head.channel == Channel.EMAIL:
            result.emails += 1
        else:
            result.posts += 1
    trail.record(
        session,
        actor,
        "campaign.targets_load",
        object_type="campaign",
        object_ids=[campaign.id],
        details={
            "encoding": parsed.encoding,
            "rows": parsed.rows,
            "households": result.households,
            "people_created": result.people_created,
            "people_matched": result.people_matched,
            "requests_issued": result.requests_issued,
            "skipped": result.skipped_already_requested,
            "replaced": result.replaced_requests,
            "contact_differs": len(result.contact_differs),
        },
    )
    session.flush()
    return parsed, result


def _audit_rejected(
    session: Session, actor: Actor, campaign: Campaign, problems: int, encoding: str | None
) -> None:
    trail.record(
        session,
        actor,
        "campaign.targets_rejected",
        object_type="campaign",
        object_ids=[campaign.id],
        outcome="failure",
        details={"problems": problems, "encoding": encoding},
        commit=True,
    )


def _find_or_create_head(
    session: Session, vault, kind: str, row: TargetRow, result: LoadResult
) -> Person:
    person = _stored(session, _person_kind(kind), row.code)
    if person is None:
        result.people_created += 1
        return registry.add_person(
            session,
            vault,
            kind=_person_kind(kind),
            name=row.name,
            code=row.code,
            name_kana=row.kana,
            birth_date=row.birth_date,
            address=row.address,
            postal_code=row.postal_code,
            email=row.email,
        )
    result.people_matched += 1
    _keep_contact(session, vault, person, row, result)
    if person.birth_date is None:
        person.birth_date = row.birth_date
    if not person.name_kana and row.kana:
        person.name_kana = row.kana
    return person


CONTACT_LABELS = {"email": "メールアドレス", "postal_code": "郵便番号", "address": "住所"}


def _keep_contact(session: Session, vault, person: Person, row: TargetRow, result: LoadResult):
    """A target list never changes a stored person's contact data.

    Whoever controls a list could otherwise point a person's request (and every later
    notice) at an address of their own. A stored value stays as it is and the request goes
    to it; a different value in the list is only reported (行 N: 項目, never the value) to
    the ClientStaff user who uploaded it, who corrects the person record (audited
    ``person.edit``) if the list is right. A field stored empty is filled from the list:
    there is no earlier address to divert from, and a post or e-mail request needs one.
    """
    stored_address = registry.decrypt_address(session, vault, person)
    listed = {"email": row.email, "postal_code": row.postal_code, "address": row.address}
    stored = {"email": person.email, "postal_code": person.postal_code, "address": stored_address}
    for key, value in listed.items():
        if not value:
            continue
        if not stored[key]:
            if key == "address":
                person.address_enc = vault.encrypt_for(
                    session, person.id, "person", "address_enc", person.id, value
                )
            else:
                setattr(person, key, value)
        elif stored[key].strip() != value.strip():
            result.contact_differs.append(f"行 {row.line}: {CONTACT_LABELS[key]}")


def _find_or_create_dependent(
    session: Session, vault, head: Person, row: TargetRow, result: LoadResult
) -> Person:
    for dep in head.dependents:
        if (
            dep.status == "active"
            and dep.name == row.name
            and (row.birth_date is None or dep.birth_date in (None, row.birth_date))
        ):
            result.people_matched += 1
            if dep.birth_date is None:
                dep.birth_date = row.birth_date
            return dep
    seq = session.execute(
        select(func.coalesce(func.max(Person.dependent_seq), 0)).where(
            Person.household_head_id == head.id
        )
    ).scalar_one()
    result.people_created += 1
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name=row.name,
        name_kana=row.kana,
        birth_date=row.birth_date,
        household_head=head,
        dependent_seq=int(seq) + 1,
        relation=row.relation,
    )
    session.refresh(head)
    return person
