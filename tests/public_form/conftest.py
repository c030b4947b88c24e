"""Fixtures for the public form: a form app on the test instance, a household with a link,
real files (JPEG with GPS EXIF, PNG, HEIC, PDF, a decompression bomb), and a ``Subject`` that
walks the form like a browser does (CSRF tokens, redirects) and keeps every response body."""

from __future__ import annotations

import datetime as dt
import io
import re
import struct
import uuid
import zlib

import pytest
from PIL import Image

from app.collection import requests
from app.core.actor import Actor
from app.core.mynumber import make_valid
from app.models import PersonKind
from app.people import registry

BIRTH = dt.date(1985, 1, 2)
DEP_BIRTH = dt.date(2015, 3, 4)
PURPOSE = "給与所得の源泉徴収票作成事務、健康保険・厚生年金保険届出事務"
NUMBER_SELF = make_valid("12345678901")
NUMBER_DEP = make_valid("98765432109")
NUMBER_ADDED = make_valid("55566677788")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def form_app(app, instance):
    """The public form on the same instance (database, public key) as the admin app."""
    import public_form

    return public_form.create_app(instance)


@pytest.fixture
def household(session, vault):
    """An employee with one listed dependent, plus an issued link. Returns a dict."""
    head = registry.add_person(
        session,
        vault,
        kind=PersonKind.EMPLOYEE,
        name="山田 太郎",
        code=f"E{uuid.uuid4().hex[:5]}",
        birth_date=BIRTH,
    )
    dep = registry.add_person(
        session,
        vault,
        kind=PersonKind.DEPENDENT,
        name="山田 花子",
        household_head=head,
        dependent_seq=1,
        relation="子",
        birth_date=DEP_BIRTH,
    )
    req, token = requests.create_request(session, Actor.system("test"), head, purpose_text=PURPOSE)
    session.commit()
    return {"head": head, "dep": dep, "req": req, "token": token}


@pytest.fixture
def external(session, vault):
    person = registry.add_person(
        session,
        vault,
        kind=PersonKind.EXTERNAL,
        name="佐藤 一郎",
        code=f"X{uuid.uuid4().hex[:5]}",
        birth_date=BIRTH,
    )
    req, token = requests.create_request(
        session, Actor.system("test"), person, purpose_text=PURPOSE
    )
    session.commit()
    return {"head": person, "req": req, "token": token}


# -- files ----------------------------------------------------------------------------------
def jpeg(size=(1200, 800), gps: bool = True, color=(200, 210, 220), noise=False) -> bytes:
    """A JPEG photo with EXIF that carries a GPS position, like a phone camera writes.
    ``noise`` makes it compress like a real photo (about 1 MB at 2000×1500)."""
    image = Image.effect_noise(size, 50).convert("RGB") if noise else Image.new("RGB", size, color)
    for x in range(0, size[0], 40):  # some structure so it is not trivially compressible
        image.paste((x % 255, 80, 120), (x, 0, x + 10, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "TestPhone"  # Make
    if gps:
        exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png(size=(600, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (255, 255, 255)).save(out, "PNG")
    return out.getvalue()


def heic(size=(640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "HEIF")
    return out.getvalue()


def pdf(extra: bytes = b"") -> bytes:
    """A small, well-formed one-page PDF (no scripts)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] " + extra + b">>",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        body += f"{off:010d} 00000 n \n".encode()
    body += (
        f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return body


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims width×height pixels (900 million by default)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * 3)
    idat = zlib.compress(row * 16, 9)  # a few rows; the header is what matters
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# -- a subject walking the form ---------------------------------------------------------------
class Subject:
    def __init__(self, client):
        self.client = client
        self.bodies: list[bytes] = []
        self.csrf: str | None = None

    def _keep(self, response):
        self.bodies.append(response.get_data())
        match = _CSRF.search(response.get_data(as_text=True))
        if match:
            self.csrf = match.group(1)
        return response

    def get(self, url, **kwargs):
        return self._keep(self.client.get(url, **kwargs))

    def post(self, url, data=None, **kwargs):
        if self.csrf is None:
            self.get(url)
        payload = {"csrf_token": self.csrf, **(data or {})}
        return self._keep(self.client.post(url, data=payload, **kwargs))

    def follow(self, response):
        while response.status_code in (301, 302, 303):
            response = self.get(response.headers["Location"])
        return response

    # steps
    def enter(self, token):
        return self.follow(self.get(f"/r/{token}"))

    def verify(self, birth=BIRTH):
        return self.post(
            "/verify", {"year": str(birth.year), "month": str(birth.month), "day": str(birth.day)}
        )

    def login(self, token, birth=BIRTH):
        self.enter(token)
        response = self.verify(birth)
        assert response.status_code == 302, response.get_data(as_text=True)
        # Signing in starts a fresh session (new CSRF token): load the next page like a browser.
        return self.follow(response)

    def consent(self):
        self.get("/consent")
        return self.post("/consent", {"agree": "yes"})

    def number(self, ref, first, second=None):
        return self.post(
            f"/p/{ref}/number",
            {"number": first, "number_confirm": first if second is None else second},
        )

    def documents(self, ref, combination, files: dict, types: dict | None = None):
        data = {"combination": combination, **(types or {})}
        for name, (content, filename) in files.items():
            data[name] = (io.BytesIO(content), filename)
        return self.post(f"/p/{ref}/documents", data, content_type="multipart/form-data")

    def card(self, ref, self_role=True):
        files = {"card_back": (jpeg(), "back.jpg")}
        if self_role:
            files["card_front"] = (jpeg(), "front.jpg")
        return self.documents(ref, "card", files)

    def submit(self):
        return self.post("/submit")


@pytest.fixture
def subject(form_app):
    return Subject(form_app.test_client())


@pytest.fixture
def operator(make_user):
    """An Operator actor (approved roster, TOTP) for the service API."""
    from app.access.policy import OPERATOR

    user, _secret = make_user(OPERATOR)
    return Actor(
        name=user.username,
        user_id=user.id,
        roles=(OPERATOR,),
        roster_entry_id=user.roster_entry_id,
        mfa=True,
        roster_approved=True,
    )


@pytest.fixture
def portal_login(client):
    """Sign in to the admin portal through the real password and TOTP pages.

    The shared ``app`` fixture keeps one app context open for the whole test, so ``flask.g``
    (where Flask-WTF caches the CSRF token) outlives each request; after the login view
    clears the session, the cached token no longer matches. Drop it between the two steps,
    as a fresh request would."""
    import pyotp
    from flask import g

    from tests import support
    from tests.conftest import USER_PASSWORD

    def do_login(username: str, totp_secret: str):
        response = support.post_form(
            client, "/login/", {"username": username, "password": USER_PASSWORD}
        )
        assert response.headers.get("Location", "").endswith("/totp/"), response.status_code
        g.pop("csrf_token", None)
        response = support.post_form(client, "/totp/", {"code": pyotp.TOTP(totp_secret).now()})
        assert response.status_code == 302, response.status_code
        g.pop("csrf_token", None)
        return response

    return do_login
