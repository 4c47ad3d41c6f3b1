"""Candidate past offerings (issue #17, item 1) over the HTTP stub, with the answers recorded on
Moodle 5.1 (tests/fixtures/moodle-5.1/README.md, "Round 2", section 11), and the ranking's
properties."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from moodle_client import AccessDeniedError, MoodleClient
from moodle_client.check import check
from moodle_client.offerings import (
    USERS_COURSES_FUNCTION,
    UserCourse,
    candidate_offerings,
    courses_in_category,
    shortname_stem,
    users_courses,
)
from moodle_client.requirements import requirement_for
from moodle_client.types import Course, SiteInfo
from tests.moodle_client.conftest import MoodleStub, Reply, fixture_json

TEACHER, STUDENT = 3, 4
# Start dates of the recorded courses: 2 (ALGO101, the current one), 3 (2024), 4 (2025).
START = {2: 1789977600, 3: 1727078400, 4: 1758528000}


def _recorded(name: str) -> Reply:
    return Reply(body=fixture_json(name))


# --------------------------------------------------------------------------- recorded calls


def test_a_teachers_courses_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(USERS_COURSES_FUNCTION, _recorded("core_enrol_get_users_courses__teacher.json"))
    courses = users_courses(client, TEACHER)
    [call] = moodle.calls_to(USERS_COURSES_FUNCTION)
    assert (call.form["userid"], call.form["returnusercount"]) == ("3", "1")
    assert [(c.id, c.shortname) for c in courses] == [
        (4, "ALGO101-2025"),
        (3, "ALGO101-2024"),
        (2, "ALGO101"),
    ]
    by_id = {c.id: c for c in courses}
    assert {i: (c.startdate, c.enddate) for i, c in by_id.items()} == {
        2: (START[2], 1797235200),
        3: (START[3], 1734336000),
        4: (START[4], 1765785600),
    }
    past = by_id[3]
    assert past.fullname == past.displayname == "Algorithmique 1 (2024-2025)"
    assert (past.idnumber, past.categoryid, past.visible) == ("ALGO101-2024", 1, True)
    # Everyone enrolled, the teacher too: 40 students and teacher1.
    assert {c.enrolled_count for c in courses} == {41}
    assert past.lastaccess == 1732716423  # the teacher's own last visit


def test_a_students_courses_look_the_same(client: MoodleClient, moodle: MoodleStub) -> None:
    """No role in the answer: a student's course reads like a teacher's, hence `taught_ids`."""
    moodle.queue(USERS_COURSES_FUNCTION, _recorded("core_enrol_get_users_courses__student.json"))
    [course] = users_courses(client, STUDENT, counts=False)
    assert moodle.calls_to(USERS_COURSES_FUNCTION)[0].form["returnusercount"] == "0"
    teacher = fixture_json("core_enrol_get_users_courses__teacher.json")
    as_teacher = UserCourse.from_json(next(c for c in teacher if c["id"] == 2))
    # Only the user's own last visit differs (and the progress, not kept).
    assert course == dataclasses.replace(as_teacher, lastaccess=1796320495)
    student = fixture_json("core_enrol_get_users_courses__student.json")[0]
    assert not {k for k in student if "role" in k}


def test_missing_count_and_dates_read_as_none_and_zero() -> None:
    recorded = fixture_json("core_enrol_get_users_courses__teacher.json")[1]
    bare = {k: recorded[k] for k in ("id", "shortname", "fullname", "idnumber", "visible")}
    course = UserCourse.from_json(bare)
    assert (course.enrolled_count, course.lastaccess, course.categoryid) == (None, None, None)
    assert (course.startdate, course.enddate, course.displayname) == (0, 0, bare["fullname"])


def test_function_not_in_the_service_names_it(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        USERS_COURSES_FUNCTION, _recorded("error_function_not_in_service__users_courses.json")
    )
    with pytest.raises(AccessDeniedError) as caught:
        users_courses(client, TEACHER)
    assert "'core_enrol_get_users_courses'" in caught.value.explanation
    assert "Add functions" in caught.value.explanation
    requirement = requirement_for(USERS_COURSES_FUNCTION)
    assert requirement is not None
    assert "moodle/course:viewparticipants" in requirement.capabilities


def test_past_offerings_is_an_optional_feature_of_check() -> None:
    site = SiteInfo.from_json(fixture_json("core_webservice_get_site_info.json"))
    report = check(site, log_source="csv")
    assert report.ok  # never "NOT READY" for it
    feature = {o.feature.key: o for o in report.optional}["past_offerings"]
    assert feature.missing_functions == (USERS_COURSES_FUNCTION,)
    assert "course update --past" in feature.line
    with_it = dataclasses.replace(
        site,
        functions=(
            *site.functions,
            dataclasses.replace(site.functions[0], name=USERS_COURSES_FUNCTION),
        ),
    )
    assert {o.feature.key: o for o in check(with_it, log_source="csv").optional}[
        "past_offerings"
    ].on


def test_courses_of_a_category_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "core_course_get_courses_by_field",
        _recorded("core_course_get_courses_by_field__category.json"),
    )
    courses = courses_in_category(client, 1)
    [call] = moodle.calls_to("core_course_get_courses_by_field")
    assert (call.form["field"], call.form["value"]) == ("category", "1")
    assert [(c.id, c.shortname, c.categoryid) for c in courses] == [
        (2, "ALGO101", 1),
        (3, "ALGO101-2024", 1),
        (4, "ALGO101-2025", 1),
        (5, "ALGO-NOEND", 1),
    ]
    assert courses[3].enddate == 0


def test_recorded_candidates_for_the_current_course(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(USERS_COURSES_FUNCTION, _recorded("core_enrol_get_users_courses__teacher.json"))
    moodle.queue(
        "core_course_get_courses_by_field",
        _recorded("core_course_get_courses_by_field__category.json"),
    )
    mine = users_courses(client, TEACHER)
    siblings = courses_in_category(client, 1)
    current = next(c for c in siblings if c.id == 2)
    # The caller's role check found teacher1 teaching 2, 3 and 4; course 5 is not theirs.
    found = candidate_offerings(current, [*siblings, *mine], taught_ids={2, 3, 4})
    assert [(c.courseid, c.match, c.enrolled_count) for c in found] == [
        (4, "same_name", 41),  # the newest first
        (3, "same_name", 41),
    ]
    assert all(c.ended_before and c.similarity == 1.0 for c in found)
    # Course 5 starts the same day as course 2: not an earlier offering, even if taught.
    assert [c.courseid for c in candidate_offerings(current, siblings, taught_ids={5})] == []
    # Only the category's list: no count.
    assert {c.enrolled_count for c in candidate_offerings(current, siblings, taught_ids={3})} == {
        None
    }


# --------------------------------------------------------------------------- the normaliser


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("ALGO101-2024", "algo101"),
        ("algo101 (2025)", "algo101"),
        ("ALGO101_2024-25", "algo101"),
        ("ALGO101 2024/2025", "algo101"),
        ("2026 Algo101", "algo101"),
        ("ALGO 101", "algo101"),
        ("Algèbre-1 \u2013 2024", "algebre1"),
        ("ALGO101-S1-2024", "algo101s1"),
        ("CS50", "cs50"),
        ("2024", "2024"),  # nothing but a year: kept whole
    ],
)
def test_shortname_stem(name: str, stem: str) -> None:
    assert shortname_stem(name) == stem


def test_terms_are_removed_only_when_asked() -> None:
    assert shortname_stem("MATH-S1-2024", without_terms=True) == "math"
    assert shortname_stem("Maths automne 2024", without_terms=True) == "maths"
    assert shortname_stem("MATH-S1-2024") != shortname_stem("MATH-S2-2025")


def test_course_numbers_far_from_the_start_year_are_not_years() -> None:
    assert shortname_stem("MATH 2010", year=2025) == "math2010"
    assert shortname_stem("MATH 2030", year=2025) != shortname_stem("MATH 2010", year=2025)
    assert shortname_stem("MATH-2025", year=2025) == "math"
    assert shortname_stem("MATH 2024-25", year=2024) == "math"


# --------------------------------------------------------------------------- properties


def _course(id_: int, shortname: str, start: int, end: int = 0) -> Course:
    return Course(
        id=id_,
        shortname=shortname,
        fullname=shortname,
        displayname=shortname,
        idnumber="",
        categoryid=1,
        startdate=start,
        enddate=end,
        visible=True,
        format="weeks",
        enablecompletion=False,
        lang="",
    )


def _september(year: int) -> int:
    return int(datetime(year, 9, 1, tzinfo=UTC).timestamp())


names = st.text(alphabet="ABCXYZ01 -_", min_size=1, max_size=10)
dates = st.integers(min_value=0, max_value=2_000_000_000)
courses = st.lists(
    st.builds(_course, st.integers(1, 30), names, dates, dates),
    max_size=12,
    unique_by=lambda c: c.id,
)


@given(current=st.builds(_course, st.integers(1, 30), names, dates, dates), others=courses)
def test_the_current_course_is_never_a_candidate(current: Course, others: list[Course]) -> None:
    everything = [current, *others]
    found = candidate_offerings(current, everything, taught_ids={c.id for c in everything})
    assert current.id not in {c.courseid for c in found}


@given(
    current=st.builds(_course, st.just(0), names, dates, dates),
    others=courses,
    taught=st.sets(st.integers(1, 30)),
)
def test_only_taught_earlier_courses_are_candidates(
    current: Course, others: list[Course], taught: set[int]
) -> None:
    found = candidate_offerings(current, others, taught_ids=taught)
    assert {c.courseid for c in found} <= taught
    by_id = {c.id: c for c in others}
    for candidate in found:
        course = by_id[candidate.courseid]
        assert (
            not current.startdate
            or course.startdate < current.startdate
            or 0 < course.enddate <= current.startdate
        )


@given(others=courses, data=st.data())
def test_the_ranking_does_not_depend_on_the_input_order(
    others: list[Course], data: st.DataObject
) -> None:
    current = data.draw(st.builds(_course, st.just(99), names, dates, dates))
    shuffled = data.draw(st.permutations(others))
    taught = {c.id for c in others}
    first = candidate_offerings(current, others, taught_ids=taught)
    assert first == candidate_offerings(current, shuffled, taught_ids=taught)
    assert first == candidate_offerings(current, others, taught_ids=taught)  # no hidden state
    rank = {"same_name": 0, "same_name_other_term": 1, "other": 2}
    keys = [(rank[c.match], -c.similarity, -c.startdate, c.courseid) for c in first]
    assert keys == sorted(keys)


# Course codes: letters and digits, with a letter and no run of four digits (no year inside).
stems = st.text(alphabet="ABCDEFGHIJKLMNOP0123456789", min_size=2, max_size=8).filter(
    lambda s: any(c.isalpha() for c in s) and re.search(r"\d{4}", s) is None
)


@given(
    base=stems,
    unrelated=stems,
    years=st.tuples(st.integers(1995, 2090), st.integers(1, 4), st.integers(0, 3)),
    separator=st.sampled_from(["-", "_", " ", " (", "."]),
)
def test_names_differing_only_by_a_year_rank_above_unrelated_names(
    base: str, unrelated: str, years: tuple[int, int, int], separator: str
) -> None:
    current_year, back, other_back = years
    past_year, other_year = current_year - back, current_year - other_back - 1
    current = _course(1, f"{base}-{current_year}", _september(current_year))
    sibling = _course(2, f"{base}{separator}{past_year}", _september(past_year))
    # The unrelated course may be newer than the sibling: the name still comes first.
    other = _course(3, f"{unrelated}-{other_year}", _september(other_year) + 86_400)
    assume(unrelated.casefold() != base.casefold())
    found = candidate_offerings(current, [other, sibling], taught_ids={1, 2, 3})
    assert [(c.courseid, c.match) for c in found] == [(2, "same_name"), (3, "other")]
