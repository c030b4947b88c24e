"""Fixtures for the collection operations: operators and client staff as service actors, the
return address and fee table a kit needs, target files, and jobs run inline or on a real
Redis with a real worker (``jobs`` fixture, parametrised)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import pytest

from app.access.policy import CLIENT_STAFF, OPERATOR
from app.core import jptime
from app.core.actor import Actor
from app.core.mynumber import make_valid
from tests import support

# The public form's fixtures, reused as they are (the form flow is driven the same way).
from tests.public_form.conftest import (  # noqa: F401
    Subject,
    form_app,
    jpeg,
    portal_login,
    subject,
)
from tests.support import add_kit_postage_rates

NUMBER_TARO = make_valid("31122334455")
NUMBER_HANAKO = make_valid("41122334455")
NUMBER_JIRO = make_valid("51122334455")
NUMBER_ICHIRO = make_valid("61122334455")
NUMBER_WRONG = make_valid("71122334455")
NUMBERS = [NUMBER_TARO, NUMBER_HANAKO, NUMBER_JIRO, NUMBER_ICHIRO, NUMBER_WRONG]
RETURN_ADDRESS = "東京都千代田区丸の内一丁目1番1号 見本ビル3階"
FORM_URL = "https://form.example.jp"

EMPLOYEE_CSV = (
    "職員番号,本人区分,続柄,氏名,氏名カナ,生年月日,郵便番号,住所,メールアドレス,送付方法\r\n"
    "E1001,本人,,見本 太郎,ミホン タロウ,1985/01/02,100-0001,東京都千代田区千代田1-1,taro@example.jp,メール\r\n"
    "E1001,扶養親族,子,見本 花子,ミホン ハナコ,2015/03/04,,,,\r\n"
    "E1002,本人,,髙橋 𠮷男,タカハシ ヨシオ,昭和60年1月2日,160-0023,東京都新宿区西新宿二丁目8番1号,,郵送\r\n"
)
EXTERNAL_CSV = (
    "委員番号,氏名,氏名カナ,生年月日,郵便番号,住所,メールアドレス,送付方法\r\n"
    "X2001,佐藤 一郎,サトウ イチロウ,1970/05/06,530-0001,大阪府大阪市北区梅田一丁目1番1号,,郵送\r\n"
)
TARO_BIRTH = dt.date(1985, 1, 2)
ICHIRO_BIRTH = dt.date(1970, 5, 6)


def submit_external(app, staff, form, documents=None):
    """An external member (X2001) who submitted on the web: their number and, unless
    ``documents`` (``(combination, files, types)``) says otherwise, both sides of the card."""
    from app.collection import links
    from tests.collection import flows  # it imports this module

    campaign, _ = flows.campaign_with_targets(app, staff, kind="external")
    req = flows.request_of("X2001")
    token = links.token_for(app.extensions["mynumber_keyring"], req.id)
    member = Subject(form.test_client())
    member.login(token, ICHIRO_BIRTH)
    member.consent()
    ref = str(req.person_id)
    assert member.number(ref, NUMBER_ICHIRO).status_code == 302
    if documents is None:
        assert member.card(ref).status_code == 302
    else:
        assert member.documents(ref, *documents).status_code == 302
    assert member.submit().headers["Location"].endswith("/done")
    return {"campaign": campaign, "req": flows.request_of("X2001"), "ref": ref, "token": token}


@pytest.fixture
def submitted(app, session, staff, request):
    """An external member who submitted on the web (link from the derived token)."""
    from tests.collection import flows  # it imports this module

    result = submit_external(app, staff, request.getfixturevalue("form_app"))
    session.expire_all()
    result["req"] = flows.request_of("X2001")
    return result


def actor_of(user, role: str) -> Actor:
    return Actor(
        name=user.username,
        user_id=user.id,
        roles=(role,),
        roster_entry_id=user.roster_entry_id,
        mfa=True,
        roster_approved=True,
    )


@pytest.fixture
def operators(make_user):
    """Three different operators (double entry, third check, four-eyes)."""
    return [actor_of(make_user(OPERATOR)[0], OPERATOR) for _ in range(3)]


@pytest.fixture
def staff(make_user):
    return actor_of(make_user(CLIENT_STAFF)[0], CLIENT_STAFF)


@pytest.fixture(autouse=True)
def collection_config(app, session):
    """What a real deployment sets: the return address printed on kits, the form's URL,
    and the carrier's fee table for the send and return methods."""
    app.config.update(
        OPERATOR_POSTAL_CODE="100-0005",
        OPERATOR_ADDRESS=RETURN_ADDRESS,
        PUBLIC_FORM_URL=FORM_URL,
        CLIENT_NAME="見本機構",
        OPERATOR_NAME="見本BPO株式会社",
    )
    add_kit_postage_rates(session, app)
    session.commit()


class Jobs:
    """Runs what was enqueued: nothing to do inline; a real RQ worker in burst mode on Redis."""

    def __init__(self, mode: str, app):
        self.mode = mode
        self.app = app

    def drain(self) -> None:
        if self.mode == "rq":
            from app.platform.queue import queue

            q = queue()
            support.drain_queue(q)

    def redis_dump(self) -> list[bytes]:
        """Every key and value under rq:* (job hashes with their compressed payload opened,
        queues, registries, result streams)."""
        if self.mode != "rq":
            return []
        import zlib

        from app.platform.queue import redis_connection

        conn = redis_connection()
        out = []
        for key in conn.scan_iter("rq:*"):
            out.append(key)
            kind = conn.type(key)
            if kind == b"hash":
                for k, v in conn.hgetall(key).items():
                    out += [k, v]
                    if k == b"data":
                        out.append(zlib.decompress(v))
            elif kind == b"stream":
                for _id, fields in conn.xrange(key):
                    for k, v in fields.items():
                        out += [k, v]
            elif kind == b"string":
                out.append(conn.get(key) or b"")
            elif kind == b"list":
                out += conn.lrange(key, 0, -1)
            elif kind == b"zset":
                out += [m for m, _ in conn.zrange(key, 0, -1, withscores=True)]
            elif kind == b"set":
                out += list(conn.smembers(key))
        return out

    def job_arguments(self) -> list[tuple]:
        """The arguments of every job this test's queue ran."""
        if self.mode != "rq":
            return []
        from rq.job import Job
        from rq.registry import FinishedJobRegistry

        from app.platform.queue import queue

        q = queue()
        ids = FinishedJobRegistry(queue=q).get_job_ids()
        return [Job.fetch(i, connection=q.connection).args for i in ids]


@pytest.fixture(params=["inline", pytest.param("rq", marks=pytest.mark.redis)])
def jobs(request, app):
    if request.param == "rq":
        request.getfixturevalue("rq_app")
    return Jobs(request.param, app)


def future_business_day(days: int = 10) -> dt.date:
    return jptime.next_business_day(jptime.today_jst() + dt.timedelta(days=days))


def token_from(url: str) -> str:
    match = re.search(r"/r/([A-Za-z0-9_\-]+)", url)
    assert match, url
    return match.group(1)


def mail_text(message) -> str:
    return message.get_body(("plain",)).get_content()


def decode_qr_codes(pdf_bytes: bytes) -> list[str]:
    """Every QR code in a PDF's images, decoded with zxing-cpp (each distinct image once:
    WeasyPrint lists a document's images in every page's resources)."""
    import zxingcpp
    from PIL import Image
    from pypdf import PdfReader

    found, seen = [], set()
    for page in PdfReader(io.BytesIO(pdf_bytes)).pages:
        for image in page.images:
            if image.data in seen:
                continue
            seen.add(image.data)
            picture = Image.open(io.BytesIO(image.data))
            found += [r.text for r in zxingcpp.read_barcodes(picture)]
    return found


def data_uri_bytes(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])
