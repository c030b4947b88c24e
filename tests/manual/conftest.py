"""The public form app on the test instance, as the form's own tests build it."""

from tests.public_form.conftest import form_app  # noqa: F401 - a fixture, used by name
