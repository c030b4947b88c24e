"""Building CSV files for the import tests (synthetic numbers with valid check digits)."""

from __future__ import annotations

import io
import random

from app.core.mynumber import make_valid

STAFF_HEADER = ["職員番号", "職員氏名", "本人区分", "扶養者コード", "生年月日", "マイナンバー"]
EXTERNAL_HEADER = ["委員番号", "氏名", "氏名カナ", "生年月日", "住所", "マイナンバー"]


def numbers(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [make_valid(f"{v:011d}") for v in rng.sample(range(10**10, 10**11), count)]


def csv_bytes(header: list[str], rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def staff_rows(households: int, dependents: int = 1, seed: int = 1) -> list[list[str]]:
    """``households`` employees, each with ``dependents`` dependents, canonical formats."""
    nums = iter(numbers(households * (1 + dependents), seed))
    rows = []
    for h in range(households):
        code = f"E{h + 1:05d}"
        rows.append([code, f"見本 太郎{h}", "本人", f"{code}-00", "1980/04/01", next(nums)])
        for d in range(1, dependents + 1):
            rows.append(
                [
                    code,
                    f"見本 花子{h}-{d}",
                    "扶養親族",
                    f"{code}-{d:02d}",
                    "2010/01/0" + str(d),
                    next(nums),
                ]
            )
    return rows


def stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
