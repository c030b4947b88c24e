"""Reading and writing the client's CSV files.

Reading streams: the file is decoded and parsed record by record, so a million-row file never
sits in memory. ``auto`` looks at the first 64 KiB: a BOM means UTF-8; bytes that decode as
UTF-8 mean UTF-8 (Japanese CP932 text almost never does); otherwise CP932. Line numbers are the
spreadsheet's: the header is line 1 and every record counts, empty ones included.

Writing produces what Excel opens without harm: UTF-8 with a BOM (default) or CP932, CRLF line
ends, and every cell that starts with ``= + - @``, a tab or a CR prefixed with ``'`` so no
formula runs (CWE-1236). Reading undoes exactly that prefix, so an exported file imports back
unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

BOM = codecs.BOM_UTF8
SNIFF_BYTES = 64 * 1024
ENCODINGS_IN = {"auto": "自動判定", "utf-8": "UTF-8", "cp932": "Shift_JIS（CP932）"}
FORMULA_START = frozenset("=+-@\t\r")
_FIELD_LIMIT = 64 * 1024


class CsvFormatError(ValueError):
    """The file cannot be read as CSV at all (encoding, structure). Japanese, no content."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"行 {line}: ファイル: {reason}")
        self.line = line
        self.reason = reason


def _needs_prefix(cell: str) -> bool:
    """A formula start, or ``'`` before one: the latter is prefixed too, or reading it back
    would take its own ``'`` for ours and the value would not round-trip (``'=1`` → ``=1``)."""
    stripped = cell.lstrip("'")
    return bool(stripped) and stripped[0] in FORMULA_START


def neutralise(cell: str) -> str:
    """Prefix a cell Excel would run as a formula with ``'``."""
    if _needs_prefix(cell):
        return "'" + cell
    return cell


def unneutralise(cell: str) -> str:
    """Undo ``neutralise`` (and only that)."""
    if len(cell) > 1 and cell[0] == "'" and _needs_prefix(cell[1:]):
        return cell[1:]
    return cell


class _Prepended(io.RawIOBase):
    """The sniffed head followed by the rest of the stream, read once."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


def detect_encoding(head: bytes) -> str:
    """``utf-8-sig``, ``utf-8`` or ``cp932`` for the first bytes of a file."""
    if head.startswith(BOM):
        return "utf-8-sig"
    for encoding in ("utf-8", "cp932"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(head, final=False)  # a character cut at the end is fine
        except UnicodeDecodeError:
            continue
        return encoding
    raise CsvFormatError(
        1, "文字コードを判定できません。UTF-8 または Shift_JIS（CP932）で保存してください"
    )


def _python_encoding(encoding: str, head: bytes) -> str:
    if encoding == "auto":
        return detect_encoding(head)
    if encoding in ("utf-8", "utf-8-sig"):
        return "utf-8-sig" if head.startswith(BOM) else "utf-8"
    if encoding == "cp932":
        return "cp932"
    raise CsvFormatError(1, "文字コードは auto、utf-8、cp932 のいずれかです")


class CsvReader:
    """Iterate ``(line, cells)`` over a binary stream; ``encoding`` is known after creation."""

    def __init__(self, stream: BinaryIO, encoding: str = "auto"):
        head = stream.read(SNIFF_BYTES)
        if not head:
            raise CsvFormatError(1, "ファイルが空です（見出し行がありません）")
        self.encoding = _python_encoding(encoding, head)
        self._raw = io.BufferedReader(_Prepended(head, stream), buffer_size=SNIFF_BYTES)
        csv.field_size_limit(_FIELD_LIMIT)

    def _lines(self) -> Iterator[str]:
        """Decode line by line (a byte 0x0A is never inside a UTF-8 or CP932 character), so a
        decoding error is reported on its own line, not somewhere in an 8 KiB block."""
        codec = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        first = True
        for raw in self._raw:
            if first:
                first = False
                if self.encoding == "utf-8-sig" and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
            yield raw.decode(codec)

    @property
    def label(self) -> str:
        return {"utf-8-sig": "UTF-8（BOM 付き）", "utf-8": "UTF-8", "cp932": "CP932"}[self.encoding]

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(self._lines(), strict=True)
        line = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise CsvFormatError(
                    line + 1,
                    f"{self.label} として読めない文字があります（文字コードを確認してください）",
                ) from None
            except csv.Error:
                raise CsvFormatError(
                    line + 1, "CSV の形式が正しくありません（引用符の対応、長すぎる値、NUL 文字）"
                ) from None
            line += 1
            if line == 1 and cells and cells[0].startswith("\ufeff"):
                cells[0] = cells[0][1:]
            yield line, cells


def is_blank(cells: list[str]) -> bool:
    return not cells or all(not c.strip() for c in cells)


class CsvWriteError(ValueError):
    """A value cannot be written in the chosen encoding (Japanese; names the row and column)."""


class CsvWriter:
    """Write rows to a binary stream in UTF-8 with BOM or CP932, neutralising formulas.

    Rows are encoded a batch at a time; when a batch does not fit the encoding the offending
    row and column are found and reported instead of silently replacing characters in a name.
    """

    def __init__(self, out: BinaryIO, encoding: str, headers: list[str]):
        if encoding not in ("utf-8-sig", "cp932"):
            raise CsvWriteError("出力の文字コードは utf-8-sig または cp932 です")
        self.out = out
        self.encoding = encoding
        self._codec = "utf-8" if encoding == "utf-8-sig" else "cp932"
        self.headers = headers
        self.lines = 0
        if encoding == "utf-8-sig":
            out.write(BOM)
        self.write_rows([headers], neutral=False)

    def write_rows(self, rows: list[list[str]], neutral: bool = True) -> None:
        if neutral:
            rows = [[neutralise(c) for c in row] for row in rows]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        try:
            data = buffer.getvalue().encode(self._codec)
        except UnicodeEncodeError:
            self._report_unencodable(rows)
            raise
        self.out.write(data)
        self.lines += len(rows)

    def _report_unencodable(self, rows: list[list[str]]) -> None:
        for offset, row in enumerate(rows):
            for column, cell in enumerate(row):
                for char in cell:
                    try:
                        char.encode(self._codec)
                    except UnicodeEncodeError:
                        label = self.headers[column] if column < len(self.headers) else column + 1
                        raise CsvWriteError(
                            f"行 {self.lines + offset + 1}: {label}: 「{char}」は CP932（Shift_JIS）で"
                            "表せません。UTF-8（BOM 付き）で出力してください"
                        ) from None


def csv_bytes(headers: list[str], rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    """A whole small CSV (a status list, a certificate) in memory, written by ``CsvWriter``:
    every CSV the product hands out goes through the one writer and its neutralising."""
    out = io.BytesIO()
    CsvWriter(out, encoding, headers).write_rows(rows)
    return out.getvalue()
