"""HPKE sealing to the intake key, and the proof that the form cannot decrypt what it stores."""

import base64
import gc
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli.instance import ensure_intake_key
from app.collection import opening
from app.models import Submission, SubmissionPart
from app.vault import sealing
from tests.public_form.conftest import NUMBER_SELF

ROOT = Path(__file__).resolve().parents[2]


def _pair():
    secret, public = sealing.generate()
    return secret, sealing.IntakePublicKey.from_dict(public), sealing.private_key(secret)


def test_round_trip_and_every_binding():
    _secret, public, private = _pair()
    info = sealing.part_info("req-1", "sub-1", "part-1")
    blob = sealing.seal(public, info, b"payload")
    assert len(blob) == len(b"payload") + 1120 + 16  # ML-KEM-768+X25519 enc + GCM tag
    assert sealing.open_sealed(private, info, blob) == b"payload"
    for other in (
        sealing.part_info("req-2", "sub-1", "part-1"),
        sealing.part_info("req-1", "sub-2", "part-1"),
        sealing.part_info("req-1", "sub-1", "part-2"),
        sealing.manifest_info("req-1", "sub-1"),
    ):
        with pytest.raises(sealing.SealError):
            sealing.open_sealed(private, other, blob)
    tampered = bytearray(blob)
    tampered[-5] ^= 1
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(private, info, bytes(tampered))
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(_pair()[2], info, blob)  # another key pair


def test_public_key_file_is_checked():
    secret, public = sealing.generate()
    assert sealing.public_from_secret(secret) == public
    forged = dict(public, x25519_public=base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(sealing.IntakeKeyError, match="鍵ID"):
        sealing.IntakePublicKey.from_dict(forged)
    with pytest.raises(sealing.IntakeKeyError):
        sealing.IntakePublicKey.from_dict({**public, "kem": "X25519"})


def test_init_creates_the_key_once_and_exports_only_the_public_half(app):
    keyring = app.extensions["mynumber_keyring"]
    secret = keyring.get_secret(sealing.SECRET_NAME)
    exported = json.loads(Path(app.config["INTAKE_PUBLIC_KEY_FILE"]).read_text())
    assert exported == sealing.public_from_secret(secret)
    assert set(exported) == {"format", "kem", "key_id", "mlkem768_public", "x25519_public"}
    assert ensure_intake_key(app) is False  # idempotent: the same key stays
    assert keyring.get_secret(sealing.SECRET_NAME) == secret


def _private_material(secret: dict) -> list[bytes]:
    """Every spelling of the private key parts that could hide in a config or a file."""
    out = []
    for name in ("mlkem768_seed", "x25519_private"):
        raw = base64.b64decode(secret[name])
        out += [raw, raw.hex().encode(), secret[name].encode()]
    return out


def test_form_app_holds_no_private_key_material(app, form_app):
    secret = app.extensions["mynumber_keyring"].get_secret(sealing.SECRET_NAME)
    assert "KEYRING_PATH" not in form_app.config
    assert "mynumber_keyring" not in form_app.extensions
    assert "mynumber_vault" not in form_app.extensions
    # Its own session key: the form host cannot forge a portal login.
    assert form_app.config["SECRET_KEY"] != app.config["SECRET_KEY"]
    assert app.config["SECRET_KEY"].encode() not in repr(form_app.config).encode()
    dump = repr(sorted(form_app.config.items(), key=str)).encode()
    dump += repr(form_app.extensions).encode()
    for material in _private_material(secret):
        assert material not in dump
    public = form_app.extensions["intake_public_key"]
    assert isinstance(public, sealing.IntakePublicKey)
    assert not any(
        isinstance(v, sealing.hpke.MLKEM768X25519PrivateKey) for v in vars(public).values()
    )


def test_form_works_without_the_key_ring_and_cannot_open_what_it_stored(
    app, session, instance, external, tmp_path, operator
):
    """Run the form in its own process with the key ring removed from the instance: it still
    takes a whole submission, and afterwards not one private key object exists in that
    process. Only the admin side, with the key ring, opens the result."""
    ring = Path(app.config["KEYRING_PATH"])
    saved = tmp_path / "keyring.saved"
    shutil.copy2(ring, saved)
    ring.unlink()
    script = textwrap.dedent(
        f"""
        import gc, json, sys
        import public_form
        from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
        from app.vault import sealing
        from tests.public_form.conftest import Subject, NUMBER_SELF
        overrides = json.loads(sys.argv[1])
        form = public_form.create_app(overrides)
        s = Subject(form.test_client())
        s.login({external["token"]!r})
        s.consent()
        s.number({str(external["head"].id)!r}, NUMBER_SELF)
        s.card({str(external["head"].id)!r})
        assert s.submit().headers["Location"].endswith("/done"), "submit failed"
        private = (sealing.hpke.MLKEM768X25519PrivateKey, mlkem.MLKEM768PrivateKey,
                   x25519.X25519PrivateKey)
        found = [type(o).__name__ for o in gc.get_objects() if isinstance(o, private)]
        print(json.dumps({{"private_keys": found}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MYNUMBER_HOME", None)
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(instance)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"private_keys": []}
    assert not ring.exists()  # the form never created or needed one
    shutil.copy2(saved, ring)
    app.extensions["mynumber_keyring"].reload()

    submission = session.execute(select(Submission)).scalar_one()
    part = session.execute(
        select(SubmissionPart).where(SubmissionPart.part == "number")
    ).scalar_one()
    # Nothing the form has opens the blob: its only key material is the public key.
    public = sealing.IntakePublicKey.from_file(
        instance["MYNUMBER_HOME"] + "/intake_public_key.json"
    )
    with pytest.raises(TypeError):
        sealing.SUITE.decrypt(part.sealed, public.key, info=b"")
    # The admin side opens it with the private key from the ring (the operator holding the
    # case in a campaign the client assigned them to).
    from tests import support

    support.give_case(session, external["req"], operator)
    opened = opening.open_submission(
        session, app.extensions["mynumber_keyring"], operator, submission.id, ""
    )
    assert opened.subjects[0].number == NUMBER_SELF
    gc.collect()
