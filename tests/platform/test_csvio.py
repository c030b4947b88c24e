"""Reading (encoding detection, line numbers) and writing (BOM, CP932, formulas)."""

import io

import pytest

from app.platform import csvio
from app.platform.csvio import (
    BOM,
    CsvFormatError,
    CsvReader,
    CsvWriteError,
    CsvWriter,
    detect_encoding,
    neutralise,
    unneutralise,
)

TEXT = '職員番号,職員氏名\r\nE1,髙橋 一郎\r\n\r\nE2,"見本,\n太郎"\r\nE3,渡辺 花子\r\n'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BOM + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("cp932"), "cp932"),
        (b"code,name\r\nE1,x\r\n", "utf-8"),
    ],
)
def test_detects_encoding_and_numbers_lines_like_a_spreadsheet(data, expected):
    reader = CsvReader(io.BytesIO(data))
    assert reader.encoding == expected
    rows = list(reader)
    assert rows[0] == (1, ["職員番号", "職員氏名"]) or rows[0][1] == ["code", "name"]
    if expected != "utf-8" or "職員" in data.decode("utf-8", "ignore"):
        assert rows[1] == (2, ["E1", "髙橋 一郎"])
        assert rows[2] == (3, [])  # an empty record still counts
        assert rows[3] == (4, ["E2", "見本,\n太郎"])
        assert rows[4] == (5, ["E3", "渡辺 花子"])


def test_utf8_character_cut_at_the_sniff_boundary_is_still_utf8():
    from app.platform.csvio import SNIFF_BYTES

    data = ("a," + "あ" * (SNIFF_BYTES // 3 + 5) + "\r\n").encode("utf-8")
    assert detect_encoding(data[:SNIFF_BYTES]) == "utf-8"
    assert list(CsvReader(io.BytesIO(data)))[0][1][1].startswith("あ")


def test_undecodable_bytes_later_in_the_file_name_the_line():
    data = ("h1,h2\r\n" + "a,b\r\n" * 30000).encode("utf-8") + "c,渡辺\r\n".encode("cp932")
    with pytest.raises(CsvFormatError) as info:
        list(CsvReader(io.BytesIO(data)))
    assert info.value.line == 30002
    assert "UTF-8" in info.value.reason


def test_forced_encoding_and_empty_file():
    data = TEXT.encode("cp932")
    with pytest.raises(CsvFormatError):
        list(CsvReader(io.BytesIO(data), "utf-8"))
    assert list(CsvReader(io.BytesIO(data), "cp932"))[1][1] == ["E1", "髙橋 一郎"]
    with pytest.raises(CsvFormatError, match="空"):
        CsvReader(io.BytesIO(b""))
    with pytest.raises(CsvFormatError, match="文字コードを判定できません"):
        CsvReader(io.BytesIO(b"\x81\xff\xfe\x80"))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_neutralised_and_read_back(start):
    cell = f"{start}SUM(A1:A9)"
    assert neutralise(cell) == "'" + cell
    assert unneutralise(neutralise(cell)) == cell
    assert neutralise("見本") == "見本"
    assert unneutralise("'見本") == "'見本"  # only our own prefix is removed


def test_writer_bom_crlf_and_neutralisation():
    out = io.BytesIO()
    writer = CsvWriter(out, "utf-8-sig", ["氏名", "備考"])
    writer.write_rows([["=1+1", "@SUM(A1)"], ["髙橋 𠮷", "a,b"]])
    data = out.getvalue()
    assert data.startswith(BOM)
    assert data.decode("utf-8-sig") == "氏名,備考\r\n'=1+1,'@SUM(A1)\r\n髙橋 𠮷,\"a,b\"\r\n"


def test_cp932_writer_names_the_row_and_column_it_cannot_write():
    out = io.BytesIO()
    writer = CsvWriter(out, "cp932", ["職員番号", "氏名"])
    writer.write_rows([["E1", "髙橋 一郎"]])
    assert out.getvalue().decode("cp932").endswith("E1,髙橋 一郎\r\n")
    assert not out.getvalue().startswith(BOM)
    with pytest.raises(CsvWriteError) as info:
        writer.write_rows([["E2", "見本"], ["E3", "𠮷田 花子"]])
    assert "行 4: 氏名" in str(info.value) and "𠮷" in str(info.value)


def test_a_whole_small_csv_is_written_by_the_one_writer():
    data = csvio.csv_bytes(["項目"], [["=1+1"], ["@SUM(A1)"], ["普通の値"]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").splitlines() == ["項目", "'=1+1", "'@SUM(A1)", "普通の値"]
