"""The demo's simulated Moodle answers the coursework functions (#16 item 6) in the recorded
shapes: the real client reads them over HTTP, and what they say agrees with the simulated log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lti_app.demo.moodle import FUNCTIONS, SimulatedMoodle
from moodle_client import MoodleClient
from moodle_client.coursework import (
    activity_completion,
    assignment_submissions,
    course_assignments,
    course_quizzes,
    quiz_user_attempts,
)
from simulation.course import SimulatedCourse, simulate_course


@pytest.fixture(scope="module")
def simulated() -> SimulatedCourse:
    return simulate_course(n_past=1, n_students=20, seed=3, current_progress=0.5)


@pytest.fixture(scope="module")
def client(simulated: SimulatedCourse) -> Iterator[MoodleClient]:
    moodle = SimulatedMoodle(simulated)
    url = moodle.start()
    yield MoodleClient(url, moodle.token, max_retries=0, timeout=10.0)
    moodle.stop()


def test_the_demo_site_lists_the_coursework_functions() -> None:
    assert {
        "mod_assign_get_assignments",
        "mod_assign_get_submissions",
        "mod_quiz_get_quizzes_by_courses",
        "mod_quiz_get_user_attempts",
        "core_completion_get_activities_completion_status",
    } <= set(FUNCTIONS)


def test_demo_coursework_agrees_with_the_simulated_log(
    client: MoodleClient, simulated: SimulatedCourse
) -> None:
    current = simulated.current
    assert current is not None
    assert current.now is not None
    now = int(current.now.timestamp())
    log = current.log
    students = [int(u) for u in current.roster["userid"]]
    assignments = course_assignments(client, current.courseid)
    assert [a.cmid for a in assignments] == [
        a.cmid for a in simulated.spec.activities if a.modname == "assign"
    ]
    submissions = assignment_submissions(client, [a.id for a in assignments])
    for a in assignments:
        submitted = set(
            log.loc[
                (log["eventname"] == "\\mod_assign\\event\\assessable_submitted")
                & (log["contextinstanceid"] == a.cmid),
                "userid",
            ]
        )
        assert {s.userid for s in submissions[a.id]} == submitted
        assert all(s.timemodified is not None and s.timemodified <= now for s in submissions[a.id])
        assert a.duedate is not None
    # Half-way through the term: some assignments already have submissions, later ones none.
    counts = [len(submissions[a.id]) for a in assignments]
    assert counts[0] > 0
    assert counts[-1] == 0
    quizzes = course_quizzes(client, current.courseid)
    assert quizzes
    assert all(q.timeclose is not None for q in quizzes)
    first = quizzes[0]
    attempted = set(
        log.loc[
            (log["eventname"] == "\\mod_quiz\\event\\attempt_submitted")
            & (log["contextinstanceid"] == first.cmid),
            "userid",
        ]
    )
    assert attempted
    for uid in students[:5]:
        attempts = quiz_user_attempts(client, first.id, uid)
        assert bool(attempts) == (uid in attempted)
    completion = dict(activity_completion(client, current.courseid, students[:3]))
    for uid, statuses in completion.items():
        assert len(statuses) == len(simulated.spec.activities)
        viewed = set(
            log.loc[(log["userid"] == uid) & (log["contextlevel"] == 70), "contextinstanceid"]
        )
        for s in statuses:
            if s.modname in ("page", "resource", "url", "forum"):
                assert (s.state == 1) == (s.cmid in viewed)
