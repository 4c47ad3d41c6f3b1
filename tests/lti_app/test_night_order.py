"""The night's courses come largest first, so that workers taking the queue in order finish
close together (longest-first list scheduling), on both databases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from lti_app.models import Course, CourseLineage, Enrolment, MoodleSite, Person
from lti_app.services.courses import nightly_course_ids


def _course(session: Session, site: MoodleSite, moodle_id: int, people: int) -> Course:
    course = Course(site_id=site.id, moodle_course_id=moodle_id, shortname=f"c{moodle_id}")
    session.add(course)
    session.flush()
    for n in range(people):
        person = Person(site_id=site.id, moodle_user_id=moodle_id * 1000 + n, fullname=f"P{n}")
        session.add(person)
        session.flush()
        session.add(Enrolment(course_id=course.id, person_id=person.id, role="student"))
    session.flush()
    return course


def test_courses_come_by_their_own_and_past_enrolments_most_first(db_session: Session) -> None:
    site = MoodleSite(base_url="https://moodle.example", ws_token_encrypted="x")
    db_session.add(site)
    db_session.flush()
    small = _course(db_session, site, 1, 3)
    big = _course(db_session, site, 2, 8)
    trained = _course(db_session, site, 3, 2)  # 2 of its own, 9 in its past offerings
    past_a = _course(db_session, site, 4, 5)
    past_b = _course(db_session, site, 5, 4)
    tie = _course(db_session, site, 6, 3)  # as many as `small`: the lower id first
    unsynced = _course(db_session, site, 7, 0)
    # Teachers and people no longer enrolled are not what the models read: they do not count.
    teacher = Person(site_id=site.id, moodle_user_id=99, fullname="T")
    gone = Person(site_id=site.id, moodle_user_id=98, fullname="G")
    db_session.add_all([teacher, gone])
    db_session.flush()
    for course in (small, tie, unsynced):
        db_session.add(Enrolment(course_id=course.id, person_id=teacher.id, role="editingteacher"))
        db_session.add(
            Enrolment(course_id=course.id, person_id=gone.id, role="student", active=False)
        )
    for past in (past_a, past_b):
        db_session.add(CourseLineage(course_id=trained.id, past_course_id=past.id))
    # A link a teacher asked for and an administrator has not approved trains nothing yet.
    db_session.add(CourseLineage(course_id=small.id, past_course_id=big.id, status="pending"))
    db_session.flush()
    assert nightly_course_ids(db_session) == [
        trained.id,  # 2 + 9
        big.id,  # 8
        past_a.id,  # 5
        past_b.id,  # 4
        small.id,  # 3
        tie.id,  # 3
        unsynced.id,  # 0
    ]
