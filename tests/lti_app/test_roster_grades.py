"""Roster and grade writes in bulk: the semantics the row-by-row version had, on both backends."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.models import Course, Enrolment, Grade, GradeItem, Person
from lti_app.services.course_data import student_roster
from lti_app.services.sites import upsert_site
from lti_app.services.sync import sync_grades, sync_roster, upsert_people
from moodle_client import types as mc


def _user(
    uid: int, name: str, email: str, *roles: str, profile: Mapping[str, str] | None = None
) -> mc.EnrolledUser:
    return mc.EnrolledUser(
        id=uid,
        username=f"u{uid}",
        fullname=name,
        firstname=name.split()[0],
        lastname=name.split()[-1],
        email=email,
        idnumber="",
        firstaccess=0,
        lastaccess=0,
        lastcourseaccess=0,
        roles=tuple(mc.Role(roleid=5, shortname=r, name=r) for r in roles),
        profile=tuple((profile or {}).items()),
    )


def _course(session: Session) -> Course:
    box = SecretBox(Fernet.generate_key().decode())
    site = upsert_site(session, box, "https://arche.example.fr", token="t" * 32)
    course = Course(site_id=site.id, moodle_course_id=2)
    session.add(course)
    session.flush()
    return course


def _enrolments(session: Session, course: Course) -> dict[tuple[int | None, str], bool]:
    rows = session.execute(
        select(Person.moodle_user_id, Enrolment.role, Enrolment.active)
        .join(Person, Person.id == Enrolment.person_id)
        .where(Enrolment.course_id == course.id)
    ).all()
    return {(uid, role): active for uid, role, active in rows}


def test_roster_sync_upserts_people_and_mirrors_roles(db_session: Session) -> None:
    course = _course(db_session)
    first = sync_roster(
        db_session,
        course,
        [
            _user(10, "Ada Lovelace", "ada@example.fr", "student"),
            _user(11, "Alan Turing", "alan@example.fr", "student", "editingteacher"),
            _user(12, "Grace Hopper", "grace@example.fr"),
        ],
    )
    assert (first.people, first.enrolments, first.deactivated) == (3, 4, 0)
    lti = db_session.scalar(select(Person).where(Person.moodle_user_id == 10))
    assert lti is not None
    db_session.add(Enrolment(course_id=course.id, person_id=lti.id, role="learner", source="lti"))
    db_session.flush()

    # Alan leaves, Ada is renamed and Moodle hides her email this time.
    second = sync_roster(
        db_session, course, [_user(10, "Ada King", "", "student"), _user(12, "Grace Hopper", "")]
    )
    assert (second.people, second.deactivated) == (2, 2)
    assert _enrolments(db_session, course) == {
        (10, "student"): True,
        (10, "learner"): True,  # an LTI launch's enrolment is not the roster sync's to end
        (11, "student"): False,
        (11, "editingteacher"): False,
        (12, "none"): True,
    }
    ada = db_session.scalar(select(Person).where(Person.moodle_user_id == 10))
    assert ada is not None
    assert (ada.fullname, ada.email) == ("Ada King", "ada@example.fr")
    assert ada.id == lti.id
    assert len(db_session.scalars(select(Person)).all()) == 3


def test_upsert_people_in_chunks_returns_every_id(db_session: Session) -> None:
    course = _course(db_session)
    people = [(uid, f"Student {uid}", None) for uid in range(1, 2_501)]
    ids = upsert_people(db_session, course.site_id, people)
    assert sorted(ids) == list(range(1, 2_501))
    assert len(set(ids.values())) == 2_500
    again = upsert_people(db_session, course.site_id, [*people[:10], (1, "Renamed", None)])
    assert again[1] == ids[1]
    assert db_session.get_one(Person, ids[1]).fullname == "Renamed"


def _report(values: dict[int, float | None], when: int) -> mc.GradeReport:
    def item(value: float | None) -> mc.GradeItem:
        return mc.GradeItem(
            id=1,
            itemname="Course total",
            itemtype="course",
            itemmodule=None,
            iteminstance=None,
            cmid=None,
            grademin=0.0,
            grademax=20.0,
            gradepass=10.0,
            graderaw=value,
            gradedategraded=when,
            gradedatesubmitted=None,
        )

    return mc.GradeReport(
        courseid=2,
        usergrades=tuple(
            mc.UserGrades(userid=uid, userfullname=f"User {uid}", useridnumber="", items=(item(v),))
            for uid, v in values.items()
        ),
    )


def test_grade_sync_upserts_values_and_creates_unknown_people(db_session: Session) -> None:
    course = _course(db_session)
    sync_roster(db_session, course, [_user(10, "Ada Lovelace", "ada@example.fr", "student")])
    assert sync_grades(db_session, course, _report({10: 12.5, 11: None}, 1_700_000_000)) == 2
    item = db_session.scalar(select(GradeItem).where(GradeItem.course_id == course.id))
    assert item is not None
    assert (item.itemtype, item.grademax, course.grade_max) == ("course", 20.0, 20.0)

    def grades() -> dict[int | None, tuple[float | None, datetime | None]]:
        rows = db_session.execute(
            select(Person.moodle_user_id, Grade.value, Grade.graded_at).join(
                Person, Person.id == Grade.person_id
            )
        ).all()
        return {uid: (value, at) for uid, value, at in rows}

    first = datetime.fromtimestamp(1_700_000_000, UTC)
    assert grades() == {10: (12.5, first), 11: (None, first)}
    # A regrade replaces the value in place; the unknown user 11 became a person once.
    assert sync_grades(db_session, course, _report({10: 15.0, 11: 9.0}, 1_700_086_400)) == 2
    later = datetime.fromtimestamp(1_700_086_400, UTC)
    assert grades() == {10: (15.0, later), 11: (9.0, later)}
    assert len(db_session.scalars(select(Grade)).all()) == 2
    ada = db_session.scalar(select(Person).where(Person.moodle_user_id == 10))
    assert ada is not None
    assert ada.email == "ada@example.fr"


def test_a_teacher_enrolled_as_a_student_too_is_not_a_student(db_session: Session) -> None:
    """A person with a teaching role in the course is its teacher: not on the student roster
    that scoring, features and the dashboard read, whether the second role came from the
    roster sync or from an LTI launch; once the teaching role ends, a student again."""
    course = _course(db_session)
    sync_roster(
        db_session,
        course,
        [
            _user(20, "Ada Lovelace", "ada@example.fr", "student"),
            _user(21, "Alan Turing", "alan@example.fr", "student", "editingteacher"),
            _user(22, "Grace Hopper", "grace@example.fr", "student"),
        ],
    )
    assert sorted(student_roster(db_session, course)["userid"]) == [20, 22]
    grace = db_session.scalar(select(Person).where(Person.moodle_user_id == 22))
    assert grace is not None
    db_session.add(Enrolment(course_id=course.id, person_id=grace.id, role="teacher", source="lti"))
    db_session.flush()
    assert sorted(student_roster(db_session, course)["userid"]) == [20]
    # Alan keeps only his student role at the next sync.
    sync_roster(db_session, course, [_user(21, "Alan Turing", "alan@example.fr", "student")])
    assert sorted(student_roster(db_session, course)["userid"]) == [21]
