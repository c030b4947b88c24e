"""Response figures for a synthetic November 2026, checked against a hand computation.

Desk hours only (Mon–Fri 10:00–17:00 JST; 11/23 勤労感謝の日 is a holiday):

| inquiry | received (JST)   | first answer (JST) | closed (JST)  | desk hours |
|---------|------------------|--------------------|---------------|------------|
| A       | Fri 10/30 16:00  | Mon 11/02 11:00    | 11/02 12:00   | 1 + 1 = 2  |
| B       | Fri 11/20 16:00  | Tue 11/24 11:00    | 11/25 10:00   | 1 + 1 = 2  |
| C       | Tue 11/24 10:00  | Tue 11/24 10:30    | –             | 0.5        |
| D       | Wed 11/25 09:00  | Thu 11/26 12:00    | Tue 12/01 10:00 | 7 + 2 = 9 |
| E       | Mon 11/30 16:30  | –                  | –             |            |
| F       | Mon 11/30 20:00  | –                  | –             |            |
| G       | Tue 12/01 00:30  | –                  | –             | (December) |
| H       | Thu 10/15 11:00  | –                  | 10/20 11:00   |            |

received in November: B C D E F = 5; answered in November: A B C D = 4;
times 0.5, 2, 2, 9 → median 2.0, max 9.0; within one desk day (7 h): 3 of 4 = 0.75;
open at month end (received by then, not closed by then): C D E F = 4.
"""

import datetime as dt

import pytest

from app.core.jptime import JST
from app.models import Inquiry
from app.operations import desk


def jst(month, day, hour, minute=0, year=2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST).astimezone(dt.UTC)


ROWS = {
    "A": (jst(10, 30, 16), jst(11, 2, 11), jst(11, 2, 12)),
    "B": (jst(11, 20, 16), jst(11, 24, 11), jst(11, 25, 10)),
    "C": (jst(11, 24, 10), jst(11, 24, 10, 30), None),
    "D": (jst(11, 25, 9), jst(11, 26, 12), jst(12, 1, 10)),
    "E": (jst(11, 30, 16, 30), None, None),
    "F": (jst(11, 30, 20), None, None),
    "G": (jst(12, 1, 0, 30), None, None),
    "H": (jst(10, 15, 11), None, jst(10, 20, 11)),
}


def test_november_matches_the_hand_computation(session):
    for label, (received, answered, closed) in ROWS.items():
        status = "closed" if closed else ("answered" if answered else "received")
        session.add(
            Inquiry(
                name=f"問合せ{label}",
                contact="desk@example.jp",
                category="other",
                body="質問",
                source="subject",
                status=status,
                received_at=received,
                first_response_at=answered,
                closed_at=closed,
            )
        )
    session.commit()
    figures = desk.response_figures(session, "2026-11")
    assert figures == desk.ResponseFigures(
        month="2026-11",
        received=5,
        answered=4,
        open_at_month_end=4,
        median_response_hours=2.0,
        max_response_hours=9.0,
        within_one_business_day=0.75,
    )
    december = desk.response_figures(session, "2026-12")
    # December: G received; C, E, F still open and G too; D closed on 12/1.
    assert (december.received, december.answered, december.open_at_month_end) == (1, 0, 4)
    assert december.median_response_hours is None and december.within_one_business_day is None


def test_a_bad_month_is_refused_in_japanese(session):
    with pytest.raises(desk.DeskError, match="月の形式"):
        desk.response_figures(session, "2026/13")
