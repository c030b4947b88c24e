"""Demo data: obviously fictional people, loaded through the real import.

``mynumber demo`` builds two CSV files in memory — households of 見本 太郎 and family, and
external members — with valid check digits, and imports them with ``app.io.imports`` exactly as a
client's file would be (audited, encrypted, blind-indexed). The same seed gives the same data,
so running it twice skips everyone the second time. Codes start with ``DEMO-``, and the command
refuses an instance that holds anyone else: demo data never mixes with real records.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import secrets
import string

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import trail
from app.core import mynumber
from app.core.actor import Actor
from app.io import imports
from app.io.layouts import EXTERNAL, STAFF, Layout
from app.models import HandlerRosterEntry, Person, VaultUser, db, utcnow
from app.vault.envelopes import Vault

PREFIX = "DEMO-"
SURNAMES = [
    ("見本", "ミホン"),
    ("試験", "シケン"),
    ("仮名", "カメイ"),
    ("例示", "レイジ"),
    ("架空", "カクウ"),
    ("模擬", "モギ"),
    ("髙見本", "タカミホン"),  # 異体字 (髙) kept exactly, and still CP932
]
MEN = [
    ("太郎", "タロウ"),
    ("一郎", "イチロウ"),
    ("次郎", "ジロウ"),
    ("健太", "ケンタ"),
    ("翔", "ショウ"),
]
WOMEN = [
    ("花子", "ハナコ"),
    ("桜", "サクラ"),
    ("陽子", "ヨウコ"),
    ("美咲", "ミサキ"),
    ("葵", "アオイ"),
]
TOWNS = ["東京都千代田区見本町", "大阪府大阪市北区試験町", "福岡県福岡市中央区架空町"]

STAFF_LAYOUT = Layout(
    name="demo-staff",
    kind=STAFF,
    columns=(
        ("code", "職員番号"),
        ("name", "職員氏名"),
        ("name_kana", "氏名カナ"),
        ("kubun", "本人区分"),
        ("dependent_code", "扶養者コード"),
        ("relation", "続柄"),
        ("birth_date", "生年月日"),
        ("number", "マイナンバー"),
    ),
)
EXTERNAL_LAYOUT = Layout(
    name="demo-external",
    kind=EXTERNAL,
    columns=(
        ("code", "委員番号"),
        ("name", "氏名"),
        ("name_kana", "氏名カナ"),
        ("birth_date", "生年月日"),
        ("postal_code", "郵便番号"),
        ("address", "住所"),
        ("number", "マイナンバー"),
    ),
)
DEMO_USERS = [
    ("demo-operator", "Operator", "デモ 事務取扱担当者"),
    ("demo-client", "ClientStaff", "デモ 発注者担当者"),
    ("demo-auditor", "Auditor", "デモ 監査担当者"),
]


class DemoRefused(RuntimeError):
    """The instance holds real records (Japanese)."""


def _numbers(rng: random.Random):
    seen: set[str] = set()
    while True:
        number = mynumber.make_valid(f"{rng.randrange(10**10, 10**11):011d}")
        if number not in seen:
            seen.add(number)
            yield number


def _birth(rng: random.Random, start: int, end: int) -> str:
    day = dt.date(start, 1, 1) + dt.timedelta(days=rng.randrange((end - start) * 365))
    return day.strftime("%Y/%m/%d")


def staff_csv(households: int, seed: int) -> bytes:
    """Employees and their dependents (spouse, children) in the demo staff layout."""
    rng = random.Random(seed)  # nosec B311  # reproducible fictional demo data, not a secret
    numbers = _numbers(random.Random(seed * 7919 + 1))  # nosec B311  # fictional demo numbers
    out = io.StringIO()
    out.write(",".join(STAFF_LAYOUT.headers) + "\r\n")
    for h in range(1, households + 1):
        surname, surname_kana = rng.choice(SURNAMES)
        given, given_kana = rng.choice(MEN + WOMEN)
        code = f"{PREFIX}E{h:05d}"
        out.write(
            f"{code},{surname} {given},{surname_kana} {given_kana},本人,{code}-00,,"
            f"{_birth(rng, 1960, 2000)},{next(numbers)}\r\n"
        )
        seq = 0
        if rng.random() < 0.6:
            seq += 1
            spouse, spouse_kana = rng.choice(WOMEN if (given, given_kana) in MEN else MEN)
            out.write(
                f"{code},{surname} {spouse},{surname_kana} {spouse_kana},扶養親族,{code}-{seq:02d},"
                f"配偶者,{_birth(rng, 1960, 2000)},{next(numbers)}\r\n"
            )
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            seq += 1
            child, child_kana = rng.choice(MEN + WOMEN)
            out.write(
                f"{code},{surname} {child},{surname_kana} {child_kana},扶養親族,{code}-{seq:02d},"
                f"子,{_birth(rng, 2005, 2024)},{next(numbers)}\r\n"
            )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def external_csv(count: int, seed: int) -> bytes:
    """External members (委員・講師) in the demo external layout."""
    rng = random.Random(seed + 1)  # nosec B311  # reproducible fictional demo data, not a secret
    numbers = _numbers(random.Random(seed * 7919 + 2))  # nosec B311  # fictional demo numbers
    out = io.StringIO()
    out.write(",".join(EXTERNAL_LAYOUT.headers) + "\r\n")
    for i in range(1, count + 1):
        surname, surname_kana = rng.choice(SURNAMES)
        given, given_kana = rng.choice(MEN + WOMEN)
        town = rng.choice(TOWNS)
        postal = f"{rng.randrange(100, 999)}-{rng.randrange(0, 9999):04d}"
        out.write(
            f"{PREFIX}X{i:05d},{surname} {given},{surname_kana} {given_kana},"
            f"{_birth(rng, 1940, 1995)},{postal},{town}{rng.randrange(1, 9)}-{rng.randrange(1, 30)},"
            f"{next(numbers)}\r\n"
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def load(
    session: Session, vault: Vault, actor: Actor, households: int, externals: int, seed: int
) -> list[tuple[str, imports.ImportReport]]:
    """Import both demo files; refuses an instance with non-demo people."""
    others = session.execute(
        select(func.count()).select_from(Person).where(~Person.code.startswith(PREFIX))
    ).scalar_one()
    if others:
        raise DemoRefused(
            "デモ以外の人物が登録されているため、デモデータは入れません（本番のデータと混ざらないように）"
        )
    results = []
    for name, layout, data in (
        ("役職員・扶養親族", STAFF_LAYOUT, staff_csv(households, seed)),
        ("外部委員等", EXTERNAL_LAYOUT, external_csv(externals, seed)),
    ):
        report = imports.import_csv(
            session, vault, actor, io.BytesIO(data), layout, filename=f"{layout.name}.csv"
        )
        if not report.ok:
            raise DemoRefused(f"{name}: " + "; ".join(str(p) for p in report.problems[:5]))
        results.append((name, report))
    return results


def _password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(14)) + "-Aa1"


def ensure_users(app: Flask) -> list[tuple[str, str, str | None]]:
    """Demo accounts for each personal-data role, on an approved (demo) roster entry.

    Passwords are generated and returned once; TOTP is enrolled at the first sign-in."""
    sm = app.appbuilder.sm
    out = []
    for username, role, label in DEMO_USERS:
        if sm.find_user(username=username) is not None:
            out.append((username, role, None))
            continue
        entry = HandlerRosterEntry(
            name=label,
            department="デモ部",
            title="デモ",
            nationality="日本",
            status="approved",
            approved_by="デモデータ（架空）",
            approved_at=utcnow(),
            note="mynumber demo が作成した架空の利用者",
        )
        db.session.add(entry)
        db.session.flush()
        password = _password()
        user = sm.add_user(
            username=username,
            first_name=label,
            last_name="",
            email=f"{username}@example.invalid",
            role=sm.find_role(role),
            password=password,
        )
        user = db.session.get(VaultUser, user.id)
        user.roster_entry_id = entry.id
        trail.record(
            db.session,
            Actor.system("mynumber demo"),
            "user.add",
            object_type="user",
            object_ids=[user.id],
            details={"roles": [role], "roster_entry_id": entry.id, "demo": True},
        )
        db.session.commit()
        out.append((username, role, password))
    return out
