"""Every download the portal hands out has one shape (app/web/downloads.py)."""

from app.web import downloads


def test_a_japanese_name_is_given_twice_and_the_type_is_not_sniffed(app):
    with app.test_request_context():
        response = downloads.attachment(b"data", "削除証明書-2026.csv", "text/csv; charset=utf-8")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="-2026.csv"; ')
    assert "filename*=UTF-8''%E5%89%8A%E9%99%A4" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_name_without_ascii_falls_back():
    response = downloads.attachment(b"", "報告書", "application/pdf")
    assert 'filename="download"' in response.headers["Content-Disposition"]
