"""Property-based tests (hypothesis) of the three parsers every hostile byte meets first: the
number normaliser, the CSV reader and writer, and the envelope parser. Each must either give
the right answer or refuse with the app's own error type — never another exception, and
never a message that repeats the digits it was given."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.core import mynumber
from app.models import DataKey
from app.platform.csvio import CsvFormatError, CsvReader, CsvWriter, neutralise, unneutralise
from app.vault.envelopes import EnvelopeError, Vault, dek_aad, parse_envelope, seal, unseal
from app.vault.keyring import FileKeyRing

QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

eleven_digits = st.text(alphabet="0123456789", min_size=11, max_size=11)
_WIDE = str.maketrans("0123456789", "０１２３４５６７８９")
_TWELVE = re.compile(r"[0-9０-９]{12}")


# -- the number normaliser ------------------------------------------------------------------
@QUICK
@given(st.text(max_size=40))
def test_normalise_returns_twelve_checked_digits_or_refuses_in_japanese(raw):
    try:
        number = mynumber.normalize(raw)
    except mynumber.InvalidMyNumber as exc:
        message = str(exc)
        assert message.startswith("個人番号") and not _TWELVE.search(message)
        return
    assert len(number) == 12 and number.isascii() and number.isdigit()
    assert mynumber.check_digit(number[:11]) == int(number[11])


@QUICK
@given(
    eleven_digits,
    st.lists(st.sampled_from(["", " ", "-", "－", "ー", "　", "‐"]), min_size=12, max_size=12),
    st.booleans(),
)
def test_every_way_of_writing_a_valid_number_gives_the_same_digits(first, separators, wide):
    number = mynumber.make_valid(first)
    typed = "".join(d + s for d, s in zip(number, separators, strict=True))
    if wide:
        typed = typed.translate(_WIDE)
    assert mynumber.normalize(typed) == number


@QUICK
@given(eleven_digits, st.integers(min_value=1, max_value=9))
def test_a_wrong_check_digit_is_always_refused(first, shift):
    number = mynumber.make_valid(first)
    wrong = number[:11] + str((int(number[11]) + shift) % 10)
    with pytest.raises(mynumber.InvalidMyNumber, match="数字がどこか違って"):
        mynumber.normalize(wrong)


@QUICK
@given(
    eleven_digits,
    st.integers(min_value=0, max_value=12),
    st.sampled_from(["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u0301", "\u0663", "x"]),
)
def test_an_invisible_or_foreign_character_anywhere_is_refused_not_dropped(first, at, char):
    number = mynumber.make_valid(first)
    with pytest.raises(mynumber.InvalidMyNumber):
        mynumber.normalize(number[:at] + char + number[at:])


# -- the CSV reader and writer ----------------------------------------------------------------
_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)
_cp932_cell = st.text(
    alphabet=st.sampled_from(list("あいうえお漢字カナｶﾅ ABCxyz019,\"'=+-@\t\r\n髙①")),
    max_size=20,
)


def _round_trip(rows: list[list[str]], encoding: str) -> list[list[str]]:
    out = io.BytesIO()
    writer = CsvWriter(out, encoding, [f"列{i}" for i in range(len(rows[0]))])
    writer.write_rows(rows)
    read = list(CsvReader(io.BytesIO(out.getvalue()), "auto"))
    assert read[0][1] == [f"列{i}" for i in range(len(rows[0]))]
    return [[unneutralise(c) for c in cells] for _line, cells in read[1:]]


@QUICK
@given(
    st.integers(1, 4).flatmap(
        lambda n: st.lists(st.lists(_cell, min_size=n, max_size=n), min_size=1, max_size=5)
    )
)
def test_what_the_writer_writes_the_reader_reads_back_unchanged_in_utf8(rows):
    assume(not any(all(c == "" for c in row) for row in rows))  # a blank row is skipped
    assert _round_trip(rows, "utf-8-sig") == rows


@QUICK
@given(
    st.integers(1, 3).flatmap(
        lambda n: st.lists(st.lists(_cp932_cell, min_size=n, max_size=n), min_size=1, max_size=4)
    )
)
def test_what_the_writer_writes_the_reader_reads_back_unchanged_in_cp932(rows):
    assume(not any(all(c == "" for c in row) for row in rows))
    assert _round_trip(rows, "cp932") == rows


@QUICK
@given(_cell)
def test_no_written_cell_starts_a_formula(cell):
    written = neutralise(cell)
    assert not written or written[0] not in "=+-@\t\r"
    assert unneutralise(written) == cell


@QUICK
@given(st.binary(max_size=300), st.sampled_from(["auto", "utf-8", "cp932"]))
def test_any_bytes_are_read_or_refused_with_a_line_number(data, encoding):
    try:
        rows = list(CsvReader(io.BytesIO(data), encoding))
    except CsvFormatError as exc:
        assert str(exc).startswith(f"行 {exc.line}: ファイル: ") and exc.line >= 1
        return
    assert [line for line, _cells in rows] == list(range(1, len(rows) + 1))


# -- the envelope parser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    keys = FileKeyRing(tmp_path_factory.mktemp("ring") / "keyring.json")
    keys.create()
    return keys


_KEY = bytes(range(32))
_AAD = b"mnv:field:my_number_record:ciphertext:1"


def _mutations():
    """A change to a valid envelope: flip one bit, cut it, extend it, or overwrite a slice."""
    return st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
        st.tuples(st.just("cut"), st.integers(0, 10_000), st.just(0)),
        st.tuples(st.just("extend"), st.binary(min_size=1, max_size=8), st.just(0)),
        st.tuples(st.just("splice"), st.integers(0, 10_000), st.binary(min_size=1, max_size=6)),
    )


def _mutate(blob: bytes, mutation) -> bytes:
    kind, a, b = mutation
    if kind == "flip":
        i = a % len(blob)
        return blob[:i] + bytes([blob[i] ^ (1 << b)]) + blob[i + 1 :]
    if kind == "cut":
        return blob[: a % len(blob)]
    if kind == "extend":
        return blob + a
    i = a % len(blob)
    changed = blob[:i] + b + blob[i + len(b) :]
    return changed if changed != blob else blob[:i] + bytes([blob[i] ^ 1]) + blob[i + 1 :]


@QUICK
@given(st.binary(max_size=64), _mutations())
def test_any_change_to_a_field_envelope_is_refused_with_envelope_error(plaintext, mutation):
    blob = seal(_KEY, 1, _AAD, plaintext)
    assert unseal(_KEY, _AAD, blob, 1) == plaintext
    changed = _mutate(blob, mutation)
    assume(changed != blob)
    with pytest.raises(EnvelopeError):
        unseal(_KEY, _AAD, changed, 1)


@SLOW
@given(st.binary(max_size=64), _mutations())
def test_any_change_to_a_system_envelope_is_refused_with_envelope_error(ring, plaintext, mutation):
    """TOTP seeds, upload tickets, print batches: the version picks the key, so an altered
    version must fail as an envelope error, not as a missing key."""
    vault = Vault(ring)
    blob = vault.seal_system("totp", "user:1", plaintext)
    changed = _mutate(blob, mutation)
    assume(changed != blob)
    with pytest.raises(EnvelopeError):
        vault.open_system("totp", "user:1", changed)


@SLOW
@given(_mutations())
def test_any_change_to_a_wrapped_data_key_is_refused_with_envelope_error(ring, mutation):
    vault = Vault(ring)
    person = uuid.uuid4()
    _dek, row = vault.new_data_key(person)
    changed = _mutate(row.wrapped, mutation)
    assume(changed != row.wrapped)
    tampered = DataKey(
        id=row.id, person_id=person, version=1, kek_version=row.kek_version, wrapped=changed
    )
    with pytest.raises(EnvelopeError):
        vault.unwrap(tampered)
    assert dek_aad(person, row.kek_version)  # the AAD binds the person and the KEK version


@QUICK
@given(
    st.one_of(
        st.binary(max_size=80),
        st.text(max_size=20),
        st.integers(),
        st.none(),
        st.lists(st.integers(0, 255), max_size=40),
    )
)
def test_the_parser_refuses_anything_that_is_not_an_envelope_with_envelope_error(value):
    try:
        env = parse_envelope(value)
    except EnvelopeError:
        return
    assert isinstance(value, bytes) and value[:3] in (b"MV\x01", b"MV\x02")
    assert env.nonce == value[7:19]
