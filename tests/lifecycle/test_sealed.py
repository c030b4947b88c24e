"""The sealed-file format on its own: round trip, and every kind of alteration refused."""

import io
import struct

import pytest

from app.vault import sealed


@pytest.fixture(scope="module")
def pair():
    private_text, public_text = sealed.generate_recipient()
    return sealed.load_private(private_text), sealed.load_public(public_text)


def _seal(public, data: bytes, chunk=1000, meta=None) -> bytes:
    out = io.BytesIO()
    writer = sealed.SealedWriter(out, "test", sealed.to_recipient(public), meta, chunk_size=chunk)
    for start in range(0, len(data), 777):
        writer.write(data[start : start + 777])
    writer.close()
    return out.getvalue()


def _open(private, blob: bytes) -> bytes:
    header, chunks = sealed.open_stream(io.BytesIO(blob), sealed.from_recipient(private))
    return b"".join(chunks)


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000])
def test_round_trip(pair, size):
    private, public = pair
    data = bytes(range(256)) * (size // 256 + 1)
    assert _open(private, _seal(public, data[:size])) == data[:size]


def test_keys_and_fingerprints(pair):
    private, public = pair
    assert private.public.fingerprint == public.fingerprint
    assert sealed.load_public(public.text()).fingerprint == public.fingerprint
    with pytest.raises(sealed.SealedError):
        sealed.load_public("{}")
    with pytest.raises(sealed.SealedError):
        sealed.load_private(public.text())


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a sealed file into its head (magic, header, key) and its chunks."""
    pos = len(sealed.MAGIC)
    (n,) = struct.unpack(">I", blob[pos : pos + 4])
    pos += 4 + n
    (m,) = struct.unpack(">I", blob[pos : pos + 4])
    pos += 4 + m
    head, chunks = blob[:pos], []
    while pos < len(blob):
        (k,) = struct.unpack(">I", blob[pos : pos + 4])
        chunks.append(blob[pos : pos + 4 + k])
        pos += 4 + k
    return head, chunks


def test_alterations_are_refused(pair):
    private, public = pair
    blob = _seal(public, b"x" * 3500, meta={"client": "見本"})
    head, chunks = _chunks(blob)
    assert len(chunks) == 4
    cases = {
        "reordered": head + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "dropped": head + chunks[0] + b"".join(chunks[2:]),
        "truncated": head + b"".join(chunks[:-1]),
        "appended": blob + chunks[-1],
        "header": blob.replace("見本".encode(), "見木".encode()),
    }
    for name, bad in cases.items():
        with pytest.raises(sealed.SealedError):
            _open(private, bad)
        assert name


def test_signed_header(pair):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    _, public = pair
    key = ed25519.Ed25519PrivateKey.generate()
    out = io.BytesIO()
    writer = sealed.SealedWriter(
        out, "return-archive", sealed.to_recipient(public), {"a": 1}, signer=key.sign
    )
    writer.close()
    header = sealed.read_header(io.BytesIO(out.getvalue()))
    assert sealed.verify_signature(header, key.public_key())
    assert not sealed.verify_signature(header, ed25519.Ed25519PrivateKey.generate().public_key())
