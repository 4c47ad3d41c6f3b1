"""Candidate past offerings of a course (issue #17, item 1: teachers link past offerings).

On first launch a teacher is shown the Moodle courses they taught before this one, each with
its dates and size, and picks the past offerings whose logs and grades train the course's
models. This module reads the two lists Moodle can give and ranks them; the web pages, the
backfill and the check that the teacher really taught a course live elsewhere.

Recorded on Moodle 5.1 (tests/fixtures/moodle-5.1/README.md, "Round 2", section 11) and
followed here:

- **`core_enrol_get_users_courses` says nothing of roles.** For teacher1 (user 3) it answers
  courses 2, 3 and 4 (`ALGO101`, `ALGO101-2024`, `ALGO101-2025`); for student01 (user 4) course
  2, in exactly the same shape. So "enrolled in" is not "taught": the caller checks the teacher
  role in each course (`core_enrol_get_enrolled_users`' `roles`, or its own roster) and passes
  the courses that pass as `taught_ids`.
- **`enrolledusercount` counts everyone enrolled**, teachers too: 41 in each recorded course,
  40 students and the teacher. It is not a student count; the screen may show it as "about N
  participants", or the caller counts students from the roster.
- **Missing access is an absence, not an error.** Moodle's code leaves out, without a warning,
  each course the token user cannot enter (`moodle/course:view`, and
  `moodle/course:viewhiddencourses` for a hidden past offering) or whose participants it may
  not see (`moodle/course:viewparticipants`; newer versions may also require seeing the
  user's profile, `moodle/user:viewdetails`). The `past_offerings` entry of
  `requirements.OPTIONAL_FEATURES` lists them, so `moodle check` does. The recording needed
  none beyond those the service's role already had.
- A function not in the token's service is `accessexception`, as for any function
  (`error_function_not_in_service__users_courses.json`): `AccessDeniedError`, naming it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Literal, Protocol

from moodle_client.client import MoodleClient
from moodle_client.requirements import USERS_COURSES_FUNCTION
from moodle_client.types import Course, _Reader, expect_list

__all__ = [
    "USERS_COURSES_FUNCTION",
    "Candidate",
    "MatchKind",
    "OfferingLike",
    "UserCourse",
    "candidate_offerings",
    "courses_in_category",
    "shortname_stem",
    "start_year",
    "users_courses",
]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class UserCourse:
    """One course of `core_enrol_get_users_courses`: what a "pick your past offerings" screen
    shows. Dates are epoch seconds, 0 where the course has none (Moodle's "no end date").

    `enrolled_count` is everyone enrolled (teachers included), None when not asked for.
    `visible` is the course's own visibility (False: hidden from students, typical of an old
    offering). `lastaccess` is the *user's* last visit to the course, None where Moodle hides
    it (a hidden user field). The answer's `hidden`, `isfavourite` and `progress` are the
    caller's own dashboard state and completion, meaningless for another user: not kept."""

    id: int
    shortname: str
    fullname: str
    displayname: str
    idnumber: str
    categoryid: int | None
    startdate: int
    enddate: int
    visible: bool
    enrolled_count: int | None
    lastaccess: int | None

    @classmethod
    def from_json(cls, data: object) -> UserCourse:
        r = _Reader(data, USERS_COURSES_FUNCTION)
        fullname = r.get_str("fullname")
        return cls(
            id=r.get_int("id"),
            shortname=r.get_str("shortname"),
            fullname=fullname,
            displayname=r.get_str("displayname", fullname) or fullname,
            idnumber=r.get_str("idnumber", ""),
            categoryid=r.opt_int("category"),
            startdate=r.opt_int("startdate") or 0,
            enddate=r.opt_int("enddate") or 0,
            visible=r.get_bool("visible", True),
            enrolled_count=r.opt_int("enrolledusercount"),
            lastaccess=r.opt_int("lastaccess"),
        )


def users_courses(client: MoodleClient, userid: int, *, counts: bool = True) -> list[UserCourse]:
    """The courses `userid` is actively enrolled in, in any role (`core_enrol_get_users_courses`).

    For a teacher that is the courses they teach *and* any they follow as a student; for a
    student, the courses they study: the answer carries no role (see the module docstring), so
    the caller keeps only the courses where the user holds a teacher role. Only active
    enrolments count (Moodle's `enrol_get_users_courses(..., onlyactive=true)`): a past
    offering whose teacher enrolment has ended or been suspended is not listed
    (`courses_in_category` finds it).

    Cost: one call for all the user's courses. Moodle works per course on its side (a COUNT of
    the enrolled users when `counts`, completion state), which its own documentation says can
    take seconds for a user in many large courses: `counts=False` (`returnusercount=0`) skips
    the counts, and `enrolled_count` is then None. A course the token user may not see is left
    out silently (module docstring)."""
    data = client.call(USERS_COURSES_FUNCTION, {"userid": userid, "returnusercount": counts})
    return [UserCourse.from_json(c) for c in expect_list(data, USERS_COURSES_FUNCTION)]


def courses_in_category(client: MoodleClient, categoryid: int) -> list[Course]:
    """Every course of a category (`core_course_get_courses_by_field`, `field=category`): the
    current course's siblings, to find the past offerings `users_courses` cannot, those where
    the teacher's enrolment has ended or been suspended (Moodle lists active enrolments only).
    Whether the teacher taught one is then the caller's check, on the course's roster.

    One call; the answer is heavy (each course's filters and format options, about 2 KB a
    course in the recording). It has no enrolled count, and its `contacts` (the site's "course
    contacts", teachers by default) are a site setting, not proof of who taught."""
    return client.get_courses_by_field("category", categoryid)


# --------------------------------------------------------------------------- ranking

#: A year as a whole token ("2024"), or an academic year written as one token ("202425",
#: "20242025"): group 1 is the (first) year.
_YEAR = re.compile(r"(199\d|20\d\d)(?:(?:19|20)?\d\d)?")
#: An academic year spread over two tokens, "2024-25" or "2024/2025": removed before splitting.
_YEAR_RANGE = re.compile(r"(?<![0-9])(199\d|20\d\d)\s*[-/_.]\s*(?:(?:19|20)\d\d|\d\d)(?![0-9])")
#: A term as a whole token: a semester, term, quarter or trimester number ("s1", "sem2", "t3",
#: "q4", "tri1"), or a season in English or French.
_TERM = re.compile(
    r"(?:s|sem|t|tri|q)[1-4]"
    r"|fall|autumn|spring|summer|winter|automne|printemps|hiver|ete"
)
_TOKEN = re.compile(r"[a-z0-9]+")


def _is_year(text: str, year: int | None) -> bool:
    return year is None or abs(int(text) - year) <= 1


@lru_cache(maxsize=4096)
def _tokens(shortname: str, year: int | None) -> tuple[str, ...]:
    decomposed = unicodedata.normalize("NFKD", shortname)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = _YEAR_RANGE.sub(lambda m: " " if _is_year(m.group(1), year) else m.group(0), plain)
    return tuple(_TOKEN.findall(plain))


def shortname_stem(shortname: str, *, year: int | None = None, without_terms: bool = False) -> str:
    """A short name without its year (and, with `without_terms`, its term), for comparing the
    offerings of one course: "ALGO101-2024", "algo101 (2025)", "ALGO101_2024-25" and "2026
    Algo101" all give "algo101".

    The name is case-folded and stripped of accents, academic years written with a separator
    ("2024-25", "2024/2025") are removed, then it is cut into runs of letters and digits, and
    the runs that are a year ("2024", "202425") are dropped wherever they stand, and with
    `without_terms` also the runs that are a term ("S1", "sem2", "T3", "Q4", "fall",
    "automne"...). What is left is joined without separators, so "ALGO 101" and "ALGO-101"
    compare equal. Digits inside a run ("ALGO101", "CS50") are never touched.

    A year is 1990 to 2099, and with `year` (the calendar year the course starts in) only one
    within a year of it: course numbers such as "MATH 2010" and "MATH 2030" are then not read
    as years of one course. Should nothing be left (a name that is only a year), the whole
    name is kept: two such names are then not the same course."""
    tokens = _tokens(shortname, year)
    kept = []
    for token in tokens:
        found = _YEAR.fullmatch(token)
        if found and _is_year(found.group(1), year):
            continue
        if without_terms and _TERM.fullmatch(token):
            continue
        kept.append(token)
    return "".join(kept or tokens)


def start_year(startdate: int) -> int | None:
    """The calendar year (UTC) of a Moodle start date, None for none (0)."""
    return datetime.fromtimestamp(startdate, tz=UTC).year if startdate > 0 else None


class OfferingLike(Protocol):
    """What ranking reads of a course: a `Course` or a `UserCourse`."""

    @property
    def id(self) -> int: ...
    @property
    def shortname(self) -> str: ...
    @property
    def fullname(self) -> str: ...
    @property
    def startdate(self) -> int: ...
    @property
    def enddate(self) -> int: ...
    @property
    def categoryid(self) -> int | None: ...


#: How a candidate's short name relates to the current course's: the same once years are
#: removed ("ALGO101-2024" for "ALGO101-2025"), the same once terms are removed too
#: ("MATH-S1-2024" for "MATH-S2-2025", possibly another course of the same subject), or other.
MatchKind = Literal["same_name", "same_name_other_term", "other"]
_MATCH_RANK: dict[MatchKind, int] = {"same_name": 0, "same_name_other_term": 1, "other": 2}


@dataclass(frozen=True)
class Candidate:
    """A course the teacher taught before the current one, for the "pick your past offerings"
    screen. `similarity` (0 to 1) compares the two short names' stems without years and terms;
    `ended_before` is False for an offering still running when the current one started (it
    may have no final grades yet), and when either date is missing. `enrolled_count` (everyone
    enrolled, teachers too) is None when only the category's list had the course."""

    courseid: int
    shortname: str
    fullname: str
    categoryid: int | None
    startdate: int
    enddate: int
    enrolled_count: int | None
    match: MatchKind
    similarity: float
    ended_before: bool


def _similarity(a: str, b: str) -> float:
    return round(SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)


def _started_before(course: OfferingLike, current: OfferingLike) -> bool:
    if not current.startdate:
        # The current course has no start date: nothing orders them, the teacher decides.
        return True
    if course.enddate and course.enddate <= current.startdate:
        return True
    return course.startdate < current.startdate


def candidate_offerings(
    current: OfferingLike, courses: Iterable[OfferingLike], *, taught_ids: Iterable[int]
) -> list[Candidate]:
    """The past offerings to propose for `current`, best first.

    `courses` may mix `users_courses` (with its enrolled counts) and `courses_in_category`
    answers; a course listed twice is one candidate, its enrolled count taken from whichever
    list had one. Kept: a course whose id is in `taught_ids` (the caller checked the teacher
    role: only courses the teacher taught can be linked), that is not `current`, and that
    started before `current` did or ended by then (every course, when `current` has no start
    date).

    Ranked by how its short name matches (`MatchKind`: a name that differs only by its year
    first; `shortname_stem`, each name's years read near the year its course starts), then by
    `similarity`, then newest start first, then by id, so that the order is the same whatever
    the order of `courses`."""
    taught = frozenset(taught_ids)
    first: dict[int, OfferingLike] = {}
    counts: dict[int, int] = {}
    for course in courses:
        first.setdefault(course.id, course)
        if isinstance(course, UserCourse) and course.enrolled_count is not None:
            counts.setdefault(course.id, course.enrolled_count)
    year = start_year(current.startdate)
    year_stem = shortname_stem(current.shortname, year=year)
    term_stem = shortname_stem(current.shortname, year=year, without_terms=True)
    out: list[Candidate] = []
    for courseid, course in first.items():
        if courseid == current.id or courseid not in taught:
            continue
        if not _started_before(course, current):
            continue
        its_year = start_year(course.startdate)
        stem = shortname_stem(course.shortname, year=its_year, without_terms=True)
        match: MatchKind
        if shortname_stem(course.shortname, year=its_year) == year_stem:
            match = "same_name"
        elif stem == term_stem:
            match = "same_name_other_term"
        else:
            match = "other"
        out.append(
            Candidate(
                courseid=courseid,
                shortname=course.shortname,
                fullname=course.fullname,
                categoryid=course.categoryid,
                startdate=course.startdate,
                enddate=course.enddate,
                enrolled_count=counts.get(courseid),
                match=match,
                similarity=_similarity(stem, term_stem),
                ended_before=0 < course.enddate <= current.startdate,
            )
        )
    out.sort(key=lambda c: (_MATCH_RANK[c.match], -c.similarity, -c.startdate, c.courseid))
    return out
