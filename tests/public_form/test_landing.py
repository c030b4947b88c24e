"""The public form's landing page: Japanese, no third-party origins, no caching."""

import public_form


def test_landing_page_in_japanese_with_desk_hours(instance):
    app = public_form.create_app(instance)
    response = app.test_client().get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="ja">' in html
    assert "QR コード" in html and "生年月日" in html and "10:00〜17:00" in html
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "http" not in csp


def test_form_app_holds_no_key_material(instance):
    app = public_form.create_app(instance)
    assert "KEYRING_PATH" not in app.config
    assert not any(k.startswith("mynumber_") for k in app.extensions)


def test_unknown_page_is_a_friendly_404(instance):
    response = public_form.create_app(instance).test_client().get("/nothing-here")
    assert response.status_code == 404
    assert "QR コード" in response.get_data(as_text=True)


def test_form_app_never_reads_or_creates_the_portal_session_key(tmp_path, instance):
    import shutil
    from pathlib import Path

    home = tmp_path / "form-host"
    shutil.copytree(instance["MYNUMBER_HOME"], home)
    (home / "secret_key").unlink()
    app = public_form.create_app({**instance, "MYNUMBER_HOME": str(home)})
    assert app.config["SECRET_KEY"]
    assert not Path(home, "secret_key").exists()
