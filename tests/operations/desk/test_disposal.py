"""Contract end: the disposal of everyone also removes every inquiry and its history."""

from sqlalchemy import func, select

from app.lifecycle import disposal
from app.models import Inquiry, InquiryAction
from app.operations import desk
from tests.lifecycle.helpers import approved_request, user_actor


def test_disposing_of_everyone_removes_inquiries_and_their_history(app, session, vault, make_user):
    staff, _ = make_user("ClientStaff")
    operator, _ = make_user("Operator")
    item = desk.file_from_portal(
        session, user_actor(staff, "ClientStaff"), category="other", body="契約終了の手順"
    )
    desk.respond(session, user_actor(operator, "Operator"), item.id, "返却後に廃棄します")
    assert session.execute(select(func.count()).select_from(InquiryAction)).scalar_one() == 2
    req, executor, _ = approved_request(session, vault, make_user, [], scope="all")
    result = disposal.execute(
        session,
        vault,
        user_actor(executor, "Operator"),
        req.id,
        app.config["DISPOSAL_JOURNAL_FILE"],
    )
    assert result.counts["inquiry"] == 1
    assert session.execute(select(func.count()).select_from(Inquiry)).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(InquiryAction)).scalar_one() == 0
