"""Fixtures for the report tests: the collection fixtures (operators, client staff, the
public form's subject) reused as they are, jobs inline. The collection's return address and
fee table are set only by the tests that drive the collection (``kit_config``), so the pure
calendar tests run without a database."""

from __future__ import annotations

import pytest

from tests.collection.conftest import (  # noqa: F401
    FORM_URL,
    RETURN_ADDRESS,
    Jobs,
    form_app,
    operators,
    staff,
    subject,
)
from tests.support import add_kit_postage_rates

CLIENT = "見本機構"
OPERATOR = "見本BPO株式会社"


@pytest.fixture
def kit_config(app, session):
    """What a deployment sets (as tests/collection does): the return address, the form's
    URL, names, and the carrier's fee table (kits 250 yen, returns 370 yen)."""
    app.config.update(
        OPERATOR_POSTAL_CODE="100-0005",
        OPERATOR_ADDRESS=RETURN_ADDRESS,
        PUBLIC_FORM_URL=FORM_URL,
        CLIENT_NAME=CLIENT,
        OPERATOR_NAME=OPERATOR,
    )
    add_kit_postage_rates(session, app)
    session.commit()


@pytest.fixture
def jobs(app):
    """Jobs run inline here: the RQ path of the collection jobs is covered in tests/collection."""
    return Jobs("inline", app)


@pytest.fixture
def report_mail(app, smtp_server):
    """The real in-process SMTP server and the client's report addresses."""
    app.config["SMTP_URL"] = smtp_server.url
    app.config["REPORT_RECIPIENTS"] = ["keiri@client.example.jp", "jinji@client.example.jp"]
    app.config.update(CLIENT_NAME=CLIENT, OPERATOR_NAME=OPERATOR)
    return smtp_server
