"""The log import reads every Moodle wording it meets (#13, item 8): Moodle 4.1 to 5.x, the
events of a real 5.1 download that were unknown, the actor of an event whose description names
only the affected user, and a summary of what stays unknown, by kind, with a line to look at."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import astuple

import pytest

from moodle_client import read_log_csv
from moodle_client.csv_logs import UnknownKind
from simulation.course import simulate_course
from simulation.exports import log_report_csv
from tests.moodle_client.conftest import FIXTURES

FULL = FIXTURES / "logs_export_en__full.csv"  # a later 5.1 download (fixtures README, §10)
PARIS = "Europe/Paris"


def _records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_every_row_of_a_real_51_download_is_recognised() -> None:
    parsed = read_log_csv(FULL, courseid=2, timezone=PARIS)
    assert len(parsed.rows) == 4843
    assert parsed.unknown_event_rows == 0
    assert parsed.unknown_kinds == ()
    names = Counter(r.eventname for r in parsed.rows)
    for event in (
        "\\core\\event\\course_updated",
        "\\tool_usertours\\event\\tour_started",
        "\\tool_usertours\\event\\tour_ended",
    ):
        assert names[event] == 1, event


def test_no_event_of_a_named_person_is_attributed_to_nobody() -> None:
    """Each row whose "User full name" names someone gets a real actor id (the issue found 27
    "Quiz attempt graded" rows stored as user 0)."""
    text = FULL.read_text(encoding="utf-8-sig")
    records = _records(text)[1:]
    parsed = read_log_csv(FULL, courseid=2, timezone=PARIS)
    # The download is newest first; the parsed rows oldest first (stable on equal times).
    by_hash = {r.content_hash: r for r in parsed.rows}
    assert len(by_hash) == len(records)
    named = [r for r in parsed.rows if r.userid == 0]
    assert named == [], [(r.eventname, r.relateduserid) for r in named[:5]]
    graded = [r for r in parsed.rows if r.eventname == "\\mod_quiz\\event\\attempt_graded"]
    assert len(graded) == 27
    for row in graded:
        assert row.userid == row.relateduserid != 0


def test_unknown_descriptions_are_counted_by_kind_with_their_first_line() -> None:
    text = FULL.read_text(encoding="utf-8-sig")
    header, first, *_ = _records(text)
    badge = [*first]
    badge[5], badge[6] = "Badge awarded", "The user with id '3' awarded the badge with id '1' to x."
    other = [*first]
    other[5], other[6] = "Something new", "A description no Moodle version ever wrote."
    rows = [header, badge, other, badge, badge]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    parsed = read_log_csv(out.getvalue().encode(), courseid=2, timezone=PARIS)
    assert parsed.unknown_event_rows == 4
    assert [astuple(k) for k in parsed.unknown_kinds] == [
        ("csv:external_tool:badge_awarded", 3, 2, badge[6]),
        ("csv:external_tool:something_new", 1, 3, other[6]),
    ]
    assert all(isinstance(k, UnknownKind) for k in parsed.unknown_kinds)


@pytest.mark.parametrize("seed", [3, 11])
def test_moodle_4x_wordings_read_as_the_same_events(seed: int) -> None:
    """The simulator writes the 4.1-5.0 descriptions where they differ; both downloads must
    give the same events (the content hash follows the text, and Moodle 4.x logged the review
    of an attempt at the teaching level)."""
    offering = simulate_course(n_past=0, n_students=40, seed=seed, current_progress=1.0).current
    assert offering is not None
    new = read_log_csv(log_report_csv(offering, wording="5.1").encode(), courseid=offering.courseid)
    old = read_log_csv(log_report_csv(offering, wording="4.x").encode(), courseid=offering.courseid)
    assert new.unknown_event_rows == old.unknown_event_rows == 0
    reviewed = "\\mod_quiz\\event\\attempt_reviewed"
    assert sum(r.eventname == reviewed for r in new.rows) > 0
    assert len(new.rows) == len(old.rows)
    for a, b in zip(new.rows, old.rows, strict=True):
        a_, b_ = a._replace(content_hash=None), b._replace(content_hash=None)
        if a.eventname == reviewed:
            assert (a.edulevel, b.edulevel) == (2, 1)
            a_, b_ = a_._replace(edulevel=0), b_._replace(edulevel=0)
        assert a_ == b_
