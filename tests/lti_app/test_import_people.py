"""A log download's acting users become people of the site, in bulk, with the rules the import
always had: a known Moodle id is left alone, a single namesake without an id (from a gradebook
export) gets the id, anybody else is a new person."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, MoodleSite, Person
from lti_app.services.imports import _link_people


def _course(session: Session) -> Course:
    site = MoodleSite(base_url="https://moodle.example")
    session.add(site)
    session.flush()
    course = Course(site_id=site.id, moodle_course_id=2)
    session.add(course)
    session.flush()
    return course


def _people(session: Session, site_id: int) -> list[tuple[int | None, str]]:
    rows = session.execute(
        select(Person.moodle_user_id, Person.fullname).where(Person.site_id == site_id)
    )
    return sorted(
        ((uid, name) for uid, name in rows), key=lambda p: (p[0] is None, p[0] or 0, p[1])
    )


def test_known_linked_and_new_people(db_session: Session) -> None:
    course = _course(db_session)
    site_id = course.site_id
    db_session.add_all(
        [
            Person(site_id=site_id, moodle_user_id=10, fullname="Ann Known"),
            Person(site_id=site_id, fullname="Bob Graded", email="bob@example.com"),
            Person(site_id=site_id, fullname="Cy Twin"),
            Person(site_id=site_id, fullname="Cy Twin"),
        ]
    )
    db_session.flush()
    bob = db_session.scalars(select(Person).where(Person.fullname == "Bob Graded")).one()

    file_people = {
        10: "Ann Renamed",  # known id: not renamed by a download
        11: "Bob Graded",  # the one namesake without an id gets this id
        12: "Bob Graded",  # Bob is taken now: a new person
        13: "Cy Twin",  # two namesakes: no guessing, a new person
        14: "Dee New",
    }
    _link_people(db_session, course, file_people)

    assert bob.moodle_user_id == 11
    assert _people(db_session, site_id) == [
        (10, "Ann Known"),
        (11, "Bob Graded"),
        (12, "Bob Graded"),
        (13, "Cy Twin"),
        (14, "Dee New"),
        (None, "Cy Twin"),
        (None, "Cy Twin"),
    ]
    # The same download again changes nothing.
    _link_people(db_session, course, file_people)
    assert len(_people(db_session, site_id)) == 7


def test_thousands_of_people_in_one_call(db_session: Session) -> None:
    """More people than one INSERT takes (SQLite's parameter limit), some already known."""
    course = _course(db_session)
    db_session.add(Person(site_id=course.site_id, moodle_user_id=3, fullname="Already There"))
    db_session.flush()
    _link_people(db_session, course, {uid: f"Student {uid}" for uid in range(1, 5001)})
    people = _people(db_session, course.site_id)
    assert len(people) == 5000
    assert people[2] == (3, "Already There")
    assert people[4999] == (5000, "Student 5000")
    _link_people(db_session, course, {})
    assert len(_people(db_session, course.site_id)) == 5000
