"""The public form's fixtures (a household with a link, a subject walking the form), for the
tests of what disposal and the return archive do with what the form received."""

from tests.public_form.conftest import form_app, household, subject  # noqa: F401
