"""Hostile input on the public form (public_form/, app/collection/uploads.py): the one part of the system
that anyone on the internet can reach. Each refusal is a Japanese page with the field named,
never a traceback or a 500, and nothing is stored for a refused step; one subject can never
reach another request's people; the form's session opens nothing in the admin portal."""

from __future__ import annotations

import struct

import pytest

from app.models import Inquiry, Submission, SubmissionPart
from app.operations import desk
from tests.hostile.conftest import assert_clear_refusal, audit_events, count, counts
from tests.public_form.conftest import NUMBER_DEP, NUMBER_SELF, jpeg, pdf, png, png_bomb


def _inquiry(subject, **fields):
    values = {
        "name": "問合 太郎",
        "contact": "taro@example.jp",
        "category": desk.SUBJECT_CATEGORIES[0],
        "body": "書類の送り方を教えてください。",
        **fields,
    }
    subject.get("/contact")
    return subject.post("/contact", values)


# -- the contact form: anyone may post ------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "phrase"),
    [
        ({"body": "本文\x00です"}, "お問い合わせ内容: "),
        ({"name": "問合\x00太郎"}, "お名前: "),
        ({"name": "問合\u202e太郎"}, "お名前: "),
        ({"body": "番号は " + "\u200b".join(NUMBER_SELF) + " です"}, "お問い合わせ内容: "),
        (
            {"body": "番号は " + NUMBER_SELF + " です"},
            "お問い合わせ内容に個人番号と思われる12桁の数字",
        ),
        ({"body": "あ" * 2001}, "2000文字以内"),
        ({"category": "' OR '1'='1"}, "お問い合わせの種類: 選んでください"),
        ({"contact": ""}, "ご連絡先（メールアドレスまたは電話番号）: 入力してください"),
    ],
    ids=[
        "nul-body",
        "nul-name",
        "rtl-override-name",
        "zero-width-hidden-number",
        "plain-number",
        "oversize-body",
        "sql-category",
        "empty-contact",
    ],
)
def test_a_hostile_inquiry_is_refused_and_not_stored(subject, fields, phrase):
    response = _inquiry(subject, **fields)
    html = assert_clear_refusal(response, phrase, status=422)
    assert count(Inquiry) == 0
    assert NUMBER_SELF not in html and "\x00" not in html


def test_an_inquiry_with_markup_is_shown_escaped_to_the_operator(
    subject, client, signed_in, session
):
    payload = '<script>alert("inq")</script><svg onload=alert(2)>'
    response = _inquiry(subject, name=payload, body=payload)
    assert response.status_code == 200 and count(Inquiry) == 1
    signed_in("Operator")
    item = session.query(Inquiry).one()
    for url in ("/inquiryview/list/", f"/inquiryview/{item.id}"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<svg onload" not in html, url
        assert "&lt;script&gt;alert(" in html, url


def test_a_post_without_the_csrf_token_is_refused(form_app, subject):
    plain = form_app.test_client()
    response = plain.post(
        "/contact",
        data={"name": "a", "contact": "b@example.jp", "category": "other", "body": "c"},
    )
    assert_clear_refusal(response, status=400)
    assert count(Inquiry) == 0


# -- links -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        "' OR 1=1 --",
        "..%2F..%2Fetc%2Fpasswd",
        "A" * 5000,
        "%00",
        "<script>alert(1)</script>",
        "ｔｏｋｅｎ",
    ],
    ids=["sql", "traversal", "very-long", "nul", "script", "full-width"],
)
def test_a_forged_link_gets_a_japanese_page_and_reflects_nothing(subject, token):
    response = subject.get(f"/r/{token}")
    # A token with a "/" in it does not even reach the link view: the plain 404 page.
    phrase = (
        "ページが見つかりません" if "/" in token.replace("%2F", "/") else "リンクが正しくありません"
    )
    html = assert_clear_refusal(response, phrase, status=404)
    assert "<script>alert(1)" not in html and "passwd" not in html


def test_another_requests_token_rebinds_the_session_and_asks_for_the_birth_date_again(
    subject, household, external
):
    subject.login(household["token"])
    subject.consent()
    # The other request's link: the session is cleared, the first factor starts over.
    subject.get(f"/r/{external['token']}")
    response = subject.get("/household")
    assert_clear_refusal(response, "もう一度リンクから開いてください", status=401)


# -- inside the form ---------------------------------------------------------------------------
@pytest.fixture
def inside(subject, household):
    subject.login(household["token"])
    subject.consent()
    return subject


def test_another_households_person_is_not_reachable_by_id(inside, external, session):
    other = str(external["head"].id)
    before = counts(SubmissionPart)
    for url in (f"/p/{other}/number", f"/p/{other}/documents"):
        assert inside.get(url).status_code == 404
    response = inside.number(other, NUMBER_SELF)
    assert_clear_refusal(response, status=404)
    assert counts(SubmissionPart) == before


@pytest.mark.parametrize(
    "typed",
    [
        "' OR '1'='1",
        "<script>alert(1)</script>",
        NUMBER_SELF[:4] + "\u200b" + NUMBER_SELF[4:],
        "\u202e" + NUMBER_SELF,
        NUMBER_SELF[:11] + "\u0663",
        NUMBER_SELF + "\x00",
        "1" * 5000,
    ],
    ids=["sql", "script", "zero-width", "rtl", "arabic-digit", "nul", "very-long"],
)
def test_a_hostile_number_is_refused_and_never_echoed(inside, household, typed):
    head = str(household["head"].id)
    before = count(SubmissionPart)
    response = inside.number(head, typed, typed)
    html = assert_clear_refusal(response, "個人番号", status=422)
    assert "<script>alert(1)" not in html and NUMBER_SELF not in html
    assert count(SubmissionPart) == before


def _svg() -> bytes:
    return (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    )


def _truncated_jpeg() -> bytes:
    data = jpeg()
    return data[: len(data) // 3]


DISGUISED = {
    "html-named-png": (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "front.png"),
    "svg-named-jpg": (_svg(), "front.jpg"),
    "svg": (_svg(), "front.svg"),
    "exe-named-jpg": (b"MZ\x90\x00" + b"\x00" * 200, "front.jpg"),
    "zip-named-pdf": (b"PK\x03\x04" + b"\x00" * 200, "front.pdf"),
    "truncated-jpeg": (_truncated_jpeg(), "front.jpg"),
    "decompression-bomb-png": (png_bomb(), "front.png"),
    "pdf-with-javascript": (
        pdf(b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> "),
        "front.pdf",
    ),
    "empty-file": (b"", "front.jpg"),
}


@pytest.mark.parametrize("case", sorted(DISGUISED))
def test_a_disguised_or_dangerous_upload_is_refused_and_nothing_is_kept(inside, household, case):
    head = str(household["head"].id)
    inside.number(head, NUMBER_SELF)
    before = count(SubmissionPart)
    content, filename = DISGUISED[case]
    response = inside.documents(
        head,
        "card",
        {"card_front": (content, filename), "card_back": (jpeg(), "back.jpg")},
    )
    html = assert_clear_refusal(response, "マイナンバーカード（表面）: ", status=422)
    assert "alert(1)" not in html and "alert(2)" not in html  # nothing of the file comes back
    assert count(SubmissionPart) == before


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (pdf(), "../../../../../etc/cron.d/front.jpg"),
        (png(), "..\\..\\windows\\system32\\front.png"),
        (jpeg(), "front.jpg\x00.html"),
        (jpeg(), "<img src=x onerror=alert(1)>.jpg"),
    ],
    ids=["pdf-named-jpg-with-traversal", "backslash-traversal", "nul-in-name", "markup-name"],
)
def test_the_file_name_is_never_used_only_the_bytes_decide(
    inside, household, app, content, filename
):
    """A PDF named .jpg is a PDF; a traversal name writes nothing anywhere; no name is kept."""
    from pathlib import Path

    head = str(household["head"].id)
    inside.number(head, NUMBER_SELF)
    home = Path(app.config["MYNUMBER_HOME"])
    files_before = sorted(p for p in home.rglob("*") if p.is_file())
    response = inside.documents(
        head, "card", {"card_front": (content, filename), "card_back": (jpeg(), "back.jpg")}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    new_files = sorted(p for p in home.rglob("*") if p.is_file())
    assert [p for p in new_files if p not in files_before and "mynumber.db" not in p.name] == []
    assert not Path("/etc/cron.d/front.jpg").exists()
    parts = inside.bodies  # nothing the server said repeats the name
    assert not any(b"onerror=alert" in body for body in parts)


def test_a_file_over_the_per_file_limit_is_refused_with_its_size(inside, household, form_app):
    head = str(household["head"].id)
    inside.number(head, NUMBER_SELF)
    form_app.config["INTAKE_MAX_FILE_BYTES"] = 200 * 1024
    big = jpeg(size=(2000, 1500), noise=True)
    assert len(big) > 200 * 1024
    before = count(SubmissionPart)
    response = inside.documents(
        head, "card", {"card_front": (big, "front.jpg"), "card_back": (jpeg(), "back.jpg")}
    )
    assert_clear_refusal(response, "ファイルが大きすぎます", status=422)
    assert count(SubmissionPart) == before


def test_a_request_over_the_body_limit_gets_a_japanese_413(inside, household, form_app):
    head = str(household["head"].id)
    form_app.config["MAX_CONTENT_LENGTH"] = 100 * 1024
    before = count(SubmissionPart)
    response = inside.documents(
        head,
        "card",
        {
            "card_front": (b"\xff\xd8\xff" + b"\x00" * 300_000, "a.jpg"),
            "card_back": (jpeg(), "b.jpg"),
        },
    )
    assert_clear_refusal(response, status=413)
    assert count(SubmissionPart) == before


def test_a_pixel_bomb_is_refused_before_it_is_decoded():
    """The header's claim is checked before a single pixel is decoded (unit level: the limit
    is the one the form passes)."""
    from app.collection import uploads

    with pytest.raises(uploads.UploadRejected, match="画像が大きすぎます|画素"):
        uploads.process(png_bomb(60000, 60000), max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)
    header = png_bomb(60000, 60000)[16:24]  # IHDR width and height
    assert struct.unpack(">II", header) == (60000, 60000)  # it claims 3.6 billion pixels


def test_the_form_session_cookie_opens_nothing_in_the_admin_portal(inside, client, app):
    """The form signs its cookie with its own key: replayed at the portal it is nobody."""
    cookie = inside.client.get_cookie("mnv_form")
    assert cookie is not None
    client.set_cookie("session", cookie.value)
    client.set_cookie("mnv_form", cookie.value)
    response = client.get("/people/")
    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
    assert not audit_events("people.search")


def test_a_submission_cannot_be_finished_without_the_csrf_token(inside, household, form_app):
    head, dep = str(household["head"].id), str(household["dep"].id)
    inside.number(head, NUMBER_SELF)
    inside.card(head)
    inside.number(dep, NUMBER_DEP)
    inside.card(dep, self_role=False)
    before = counts(Submission)
    response = inside.client.post("/submit")  # the session cookie, but no token
    assert_clear_refusal(response, status=400)
    assert counts(Submission) == before
    assert household["req"].status == "issued"
