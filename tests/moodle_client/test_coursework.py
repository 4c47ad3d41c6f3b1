"""Assignments, submissions, quizzes, quiz attempts and activity completion (issue #16, item 6)
over the HTTP stub, with every answer and error recorded on Moodle 5.1 for them
(tests/fixtures/moodle-5.1/README.md, "Round 2", section 6). An empty answer with a warning is a
refusal, never "nothing there"."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from moodle_client import AccessDeniedError, MissingCapabilityError, MoodleClient, SiteInfo, check
from moodle_client.coursework import (
    NO_ACCESS_WARNING,
    activity_completion,
    assignment_submissions,
    course_assignments,
    course_quizzes,
    quiz_user_attempts,
)
from moodle_client.types import SiteFunction
from tests.moodle_client.conftest import MoodleStub, Reply, fixture_json


def _recorded(name: str) -> Reply:
    return Reply(body=fixture_json(name))


# --------------------------------------------------------------------------- assignments


def test_assignments_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("mod_assign_get_assignments", _recorded("mod_assign_get_assignments.json"))
    [assignment] = course_assignments(client, 2)
    assert (assignment.id, assignment.cmid, assignment.courseid) == (1, 5, 2)
    assert assignment.name == "TP1 : implementer le tri fusion"
    assert assignment.duedate == 1793606400
    assert assignment.allowsubmissionsfromdate == 1791792000
    assert assignment.cutoffdate is None  # Moodle's 0: no cut-off
    assert not assignment.nosubmissions
    assert not assignment.teamsubmission
    form = moodle.calls_to("mod_assign_get_assignments")[0].form
    assert form["courseids[0]"] == "2"
    assert form["includenotenrolledcourses"] == "1"  # without it: courses [] and warning "2"


def test_not_enrolled_warning_is_a_refusal_not_no_assignment(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(
        "mod_assign_get_assignments", _recorded("mod_assign_get_assignments__notenrolled.json")
    )
    with pytest.raises(MissingCapabilityError) as refused:
        course_assignments(client, 2)
    assert refused.value.errorcode == NO_ACCESS_WARNING
    assert "moodle/course:view" in refused.value.capabilities
    assert "User is not enrolled" in refused.value.message
    # The same shape without a warning is a course without assignments.
    moodle.queue("mod_assign_get_assignments", Reply(body={"courses": [], "warnings": []}))
    assert course_assignments(client, 2) == []
    moodle.queue(
        "mod_assign_get_assignments",
        Reply(body={"courses": [{"id": 2, "assignments": []}], "warnings": []}),
    )
    assert course_assignments(client, 2) == []


def test_submissions_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("mod_assign_get_submissions", _recorded("mod_assign_get_submissions.json"))
    by_assignment = assignment_submissions(client, [1])
    submissions = by_assignment[1]
    assert len(submissions) == 32  # 32 of 40 students have a row
    assert Counter(s.status for s in submissions) == {"submitted": 27, "new": 5}
    assert len({s.userid for s in submissions}) == 32
    first = next(s for s in submissions if s.userid == 15)
    assert (first.status, first.timemodified, first.gradingstatus) == (
        "submitted",
        1793559093,
        "graded",
    )
    assert moodle.calls_to("mod_assign_get_submissions")[0].form["assignmentids[0]"] == "1"
    assert assignment_submissions(client, []) == {}  # no call for no assignment
    assert len(moodle.calls_to("mod_assign_get_submissions")) == 1


def test_submissions_without_viewgrades_are_refused_not_empty(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue("mod_assign_get_submissions", _recorded("mod_assign_get_submissions__nocap.json"))
    with pytest.raises(MissingCapabilityError) as refused:
        assignment_submissions(client, [1])
    assert refused.value.capabilities == ("mod/assign:viewgrades",)
    assert refused.value.errorcode == NO_ACCESS_WARNING
    assert "No access rights in module context" in str(refused.value)
    # Nothing submitted yet, and no warning: really no submission.
    moodle.queue("mod_assign_get_submissions", Reply(body={"assignments": [], "warnings": []}))
    assert assignment_submissions(client, [1]) == {1: []}


def test_only_the_latest_attempt_of_a_submission_is_kept(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    body = fixture_json("mod_assign_get_submissions.json")
    rows = body["assignments"][0]["submissions"]
    reopened = dict(rows[0], attemptnumber=0, status="reopened")
    rows[0] = dict(rows[0], attemptnumber=1, status="submitted")
    rows.append(reopened)
    moodle.queue("mod_assign_get_submissions", Reply(body=body))
    kept = [s for s in assignment_submissions(client, [1])[1] if s.userid == rows[0]["userid"]]
    assert [(s.attemptnumber, s.status) for s in kept] == [(1, "submitted")]


# --------------------------------------------------------------------------- quizzes


def test_quizzes_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "mod_quiz_get_quizzes_by_courses", _recorded("mod_quiz_get_quizzes_by_courses.json")
    )
    [quiz] = course_quizzes(client, 2)
    assert (quiz.id, quiz.cmid, quiz.name) == (1, 6, "Quiz 1 : recursivite et tris")
    assert (quiz.timeopen, quiz.timeclose) == (1794211200, 1796025600)
    assert (quiz.grade, quiz.sumgrades, quiz.attempts) == (20.0, 4.0, 1)
    assert moodle.calls_to("mod_quiz_get_quizzes_by_courses")[0].form["courseids[0]"] == "2"


def test_a_course_warning_on_quizzes_is_a_refusal(client: MoodleClient, moodle: MoodleStub) -> None:
    warning = {"item": "course", "itemid": 2, "warningcode": "1", "message": "No access rights"}
    moodle.queue(
        "mod_quiz_get_quizzes_by_courses", Reply(body={"quizzes": [], "warnings": [warning]})
    )
    with pytest.raises(MissingCapabilityError) as refused:
        course_quizzes(client, 2)
    assert "mod/quiz:view" in refused.value.capabilities
    moodle.queue("mod_quiz_get_quizzes_by_courses", Reply(body={"quizzes": [], "warnings": []}))
    assert course_quizzes(client, 2) == []


def test_quiz_attempts_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("mod_quiz_get_user_attempts", _recorded("mod_quiz_get_user_attempts.json"))
    moodle.queue(
        "mod_quiz_get_user_attempts", _recorded("mod_quiz_get_user_attempts__noattempt.json")
    )
    moodle.queue(
        "mod_quiz_get_user_attempts", _recorded("error_missing_capability__quiz_viewreports.json")
    )
    [attempt] = quiz_user_attempts(client, 1, 6)
    assert (attempt.userid, attempt.state, attempt.attempt) == (6, "finished", 1)
    assert attempt.sumgrades == 3.0  # raw marks, out of the quiz's sumgrades (4), not of 20
    assert (attempt.timestart, attempt.timefinish) == (1794345014, 1794345395)
    form = moodle.calls_to("mod_quiz_get_user_attempts")[0].form
    assert (form["quizid"], form["userid"], form["status"]) == ("1", "6", "all")
    assert quiz_user_attempts(client, 1, 4) == []
    with pytest.raises(MissingCapabilityError) as refused:
        quiz_user_attempts(client, 1, 4)
    assert refused.value.capabilities == ("mod/quiz:viewreports",)
    assert refused.value.errorcode == "nopermissions"


# --------------------------------------------------------------------------- completion


def test_completion_is_one_call_per_student(client: MoodleClient, moodle: MoodleStub) -> None:
    got = dict(activity_completion(client, 2, [4, 5, 6]))
    assert list(got) == [4, 5, 6]
    assert len(moodle.calls_to("core_completion_get_activities_completion_status")) == 3
    states = {s.cmid: s.state for s in got[4]}
    assert states == {4: 1, 1: 1, 3: 1, 2: 1, 5: 1, 6: 0}
    assert {s.cmid: s.timecompleted for s in got[4]}[5] == 1792338451
    moodle.queue(
        "core_completion_get_activities_completion_status",
        _recorded("error_function_not_in_service.json"),
    )
    with pytest.raises(AccessDeniedError):
        dict(activity_completion(client, 2, [4]))


# --------------------------------------------------------------------------- moodle check


def _site() -> SiteInfo:
    return SiteInfo.from_json(fixture_json("core_webservice_get_site_info.json"))


def test_check_lists_the_coursework_features_as_optional() -> None:
    site = _site()
    report = check(site, log_source="csv")
    assert report.ok  # optional features never make a site "not ready"
    by_key = {o.feature.key: o for o in report.optional}
    assert set(by_key) >= {"assignments", "quizzes", "completion"}
    # The recorded service has the completion function, not the assignment or quiz ones.
    assert by_key["completion"].on
    assert by_key["assignments"].missing_functions == (
        "mod_assign_get_assignments",
        "mod_assign_get_submissions",
    )
    text = "\n".join(report.lines())
    assert "Optional features (the tool works without them):" in text
    assert "mod/assign:viewgrades" in text
    assert "report/progress:view" in text
    assert "'mod_quiz_get_quizzes_by_courses'" in text
    full = dataclasses.replace(
        site,
        functions=(
            *site.functions,
            *(
                SiteFunction(name, "2025100600")
                for name in (
                    "mod_assign_get_assignments",
                    "mod_assign_get_submissions",
                    "mod_quiz_get_quizzes_by_courses",
                )
            ),
        ),
    )
    coursework = {"assignments", "quizzes", "completion"}
    assert all(o.on for o in check(full, log_source="csv").optional if o.feature.key in coursework)
