"""Typed results of the web-service calls.

Each dataclass keeps the fields the tool uses, converted to Python types, and is built by a
``from_json`` that raises ``MalformedResponseError`` on a wrong shape, so that a Moodle version
that changed a return structure fails loudly at the boundary instead of deep in the sync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moodle_client.errors import MalformedResponseError

__all__ = [
    "ActivityCompletion",
    "Course",
    "CourseGrading",
    "CourseModule",
    "CourseSection",
    "EnrolledUser",
    "GradeItem",
    "GradeReport",
    "Role",
    "SiteFunction",
    "SiteInfo",
    "UserGrades",
]


class _Reader:
    """Typed access to one JSON object, raising ``MalformedResponseError`` naming the field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise MalformedResponseError(
                f"expected a JSON object for {where}, got {type(data).__name__}"
            )
        self.data = data
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                raise MalformedResponseError(f"{self.where}: field {key!r} is missing")
            return None
        return self.data[key]

    def get_int(self, key: str) -> int:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int):
            # Some Moodle versions send numeric strings; accept those, refuse the rest.
            if isinstance(value, str) and value.lstrip("-").isdigit():
                return int(value)
            raise MalformedResponseError(f"{self.where}: field {key!r} is not an integer")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self._get(key, False)
        return None if value is None else self.get_int(key)

    def get_str(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default is None)
        if value is None:
            return default or ""
        if not isinstance(value, str):
            raise MalformedResponseError(f"{self.where}: field {key!r} is not a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, str):
            raise MalformedResponseError(f"{self.where}: field {key!r} is not a string")
        return value

    def opt_float(self, key: str) -> float | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise MalformedResponseError(f"{self.where}: field {key!r} is not a number")
        try:
            return float(value)
        except ValueError:
            raise MalformedResponseError(f"{self.where}: field {key!r} is not a number") from None

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool | int):
            return bool(value)
        raise MalformedResponseError(f"{self.where}: field {key!r} is not a boolean")

    def get_list(self, key: str, required: bool = True) -> Sequence[Any]:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise MalformedResponseError(f"{self.where}: field {key!r} is not a list")
        return value


def expect_list(data: Any, where: str) -> Sequence[Any]:
    """A top-level JSON array, or ``MalformedResponseError``."""
    if not isinstance(data, list):
        raise MalformedResponseError(
            f"expected a JSON array for {where}, got {type(data).__name__}"
        )
    return data


@dataclass(frozen=True)
class SiteFunction:
    name: str
    version: str


@dataclass(frozen=True)
class SiteInfo:
    """``core_webservice_get_site_info``: who the token is and what its service may call."""

    sitename: str
    siteurl: str
    username: str
    userid: int
    fullname: str
    lang: str
    release: str
    version: str
    userissiteadmin: bool
    functions: tuple[SiteFunction, ...]

    @property
    def function_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.functions)

    @classmethod
    def from_json(cls, data: Any) -> SiteInfo:
        r = _Reader(data, "core_webservice_get_site_info")
        functions = tuple(
            SiteFunction(name=f.get_str("name"), version=f.get_str("version", ""))
            for f in (_Reader(x, "site info function") for x in r.get_list("functions"))
        )
        return cls(
            sitename=r.get_str("sitename", ""),
            siteurl=r.get_str("siteurl"),
            username=r.get_str("username", ""),
            userid=r.get_int("userid"),
            fullname=r.get_str("fullname", ""),
            lang=r.get_str("lang", ""),
            release=r.get_str("release", ""),
            version=r.get_str("version", ""),
            userissiteadmin=r.get_bool("userissiteadmin"),
            functions=functions,
        )


@dataclass(frozen=True)
class Course:
    """One course of ``core_course_get_courses_by_field``. Dates are epoch seconds (0 = none)."""

    id: int
    shortname: str
    fullname: str
    displayname: str
    idnumber: str
    categoryid: int | None
    startdate: int
    enddate: int
    visible: bool
    format: str
    enablecompletion: bool
    lang: str

    @classmethod
    def from_json(cls, data: Any) -> Course:
        r = _Reader(data, "course")
        return cls(
            id=r.get_int("id"),
            shortname=r.get_str("shortname"),
            fullname=r.get_str("fullname"),
            displayname=r.get_str("displayname", r.get_str("fullname")),
            idnumber=r.get_str("idnumber", ""),
            categoryid=r.opt_int("categoryid"),
            startdate=r.opt_int("startdate") or 0,
            enddate=r.opt_int("enddate") or 0,
            visible=r.get_bool("visible", True),
            format=r.get_str("format", ""),
            enablecompletion=r.get_bool("enablecompletion"),
            lang=r.get_str("lang", ""),
        )


@dataclass(frozen=True)
class Role:
    roleid: int
    shortname: str
    name: str


#: The standard profile fields of an enrolled user that a fairness audit may declare.
PROFILE_FIELDS = ("department", "institution", "city", "country")


def _profile(r: _Reader) -> tuple[tuple[str, str], ...]:
    pairs = [(name, r.get_str(name, "")) for name in PROFILE_FIELDS]
    for raw in r.get_list("customfields", required=False):
        field = _Reader(raw, "custom field")
        shortname = field.get_str("shortname", "")
        if shortname:
            pairs.append((f"profile_field_{shortname}", field.get_str("value", "")))
    return tuple((name, value) for name, value in pairs if value != "")


@dataclass(frozen=True)
class EnrolledUser:
    """A participant of ``core_enrol_get_enrolled_users`` with the roles held in the course."""

    id: int
    username: str
    fullname: str
    firstname: str
    lastname: str
    email: str
    idnumber: str
    firstaccess: int
    lastaccess: int
    lastcourseaccess: int
    roles: tuple[Role, ...]
    #: The profile attributes the answer carries, as (name, value) pairs: the standard fields
    #: `department`, `institution`, `city`, `country` when present, and each custom profile
    #: field as `profile_field_<shortname>` (Moodle's `customfields`, listed only when the user
    #: has a value). What a site's fairness audit may declare; the caller keeps only those.
    profile: tuple[tuple[str, str], ...] = ()

    @property
    def role_shortnames(self) -> tuple[str, ...]:
        return tuple(role.shortname for role in self.roles)

    @classmethod
    def from_json(cls, data: Any) -> EnrolledUser:
        r = _Reader(data, "enrolled user")
        roles = tuple(
            Role(
                roleid=x.get_int("roleid"),
                shortname=x.get_str("shortname", ""),
                name=x.get_str("name", ""),
            )
            for x in (_Reader(v, "role") for v in r.get_list("roles", required=False))
        )
        return cls(
            id=r.get_int("id"),
            username=r.get_str("username", ""),
            fullname=r.get_str("fullname", ""),
            firstname=r.get_str("firstname", ""),
            lastname=r.get_str("lastname", ""),
            email=r.get_str("email", ""),
            idnumber=r.get_str("idnumber", ""),
            firstaccess=r.opt_int("firstaccess") or 0,
            lastaccess=r.opt_int("lastaccess") or 0,
            lastcourseaccess=r.opt_int("lastcourseaccess") or 0,
            roles=roles,
            profile=_profile(r),
        )


@dataclass(frozen=True)
class GradeItem:
    """One grade item with one user's grade, from ``gradereport_user_get_grade_items``.

    ``graderaw`` is None when the user has no grade. The course total is ``itemtype ==
    "course"`` (its ``itemname`` is null in Moodle's answer).
    """

    id: int
    itemname: str
    itemtype: str
    itemmodule: str | None
    iteminstance: int | None
    cmid: int | None
    grademin: float
    grademax: float
    gradepass: float | None
    graderaw: float | None
    gradedategraded: int | None
    gradedatesubmitted: int | None

    @property
    def is_course_total(self) -> bool:
        return self.itemtype == "course"

    @classmethod
    def from_json(cls, data: Any) -> GradeItem:
        r = _Reader(data, "grade item")
        return cls(
            id=r.get_int("id"),
            itemname=r.opt_str("itemname") or "",
            itemtype=r.get_str("itemtype"),
            itemmodule=r.opt_str("itemmodule"),
            iteminstance=r.opt_int("iteminstance"),
            cmid=r.opt_int("cmid"),
            grademin=r.opt_float("grademin") or 0.0,
            grademax=_or(r.opt_float("grademax"), 100.0),
            gradepass=r.opt_float("gradepass"),
            graderaw=r.opt_float("graderaw"),
            gradedategraded=r.opt_int("gradedategraded"),
            gradedatesubmitted=r.opt_int("gradedatesubmitted"),
        )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class UserGrades:
    userid: int
    userfullname: str
    useridnumber: str
    items: tuple[GradeItem, ...]

    @property
    def course_total(self) -> GradeItem | None:
        return next((item for item in self.items if item.is_course_total), None)

    @classmethod
    def from_json(cls, data: Any) -> UserGrades:
        r = _Reader(data, "usergrades")
        return cls(
            userid=r.get_int("userid"),
            userfullname=r.get_str("userfullname", ""),
            useridnumber=r.get_str("useridnumber", ""),
            items=tuple(GradeItem.from_json(x) for x in r.get_list("gradeitems")),
        )


@dataclass(frozen=True)
class GradeReport:
    """Every user's grade items of one course (userid=0)."""

    courseid: int
    usergrades: tuple[UserGrades, ...]

    @property
    def course_total_item(self) -> GradeItem | None:
        """The course-total item definition (the first user's copy), None without users."""
        for user in self.usergrades:
            if user.course_total is not None:
                return user.course_total
        return None

    @classmethod
    def from_json(cls, data: Any, courseid: int) -> GradeReport:
        r = _Reader(data, "gradereport_user_get_grade_items")
        return cls(
            courseid=courseid,
            usergrades=tuple(UserGrades.from_json(x) for x in r.get_list("usergrades")),
        )


@dataclass(frozen=True)
class CourseGrading:
    """The course total's pass mark and range, from the companion plugin's
    ``local_archepredict_get_course_grading`` (stock web services never return ``gradepass``).

    ``grademax`` is the item's own maximum: Moodle compares ``gradepass`` with the raw total
    whatever a user's own maximum, so ``gradepass / grademax`` is the pass mark as a share.
    """

    courseid: int
    itemid: int
    gradetype: int
    grademin: float
    grademax: float
    gradepass: float
    aggregation: int | None
    aggregateonlygraded: bool

    @property
    def pass_share(self) -> float | None:
        """The pass mark as a share of the total's range, or None when none is set (Moodle
        stores 0) or the total is not a numeric value (gradetype 1)."""
        if self.gradetype != 1 or self.gradepass <= 0 or self.grademax <= self.grademin:
            return None
        share = (self.gradepass - self.grademin) / (self.grademax - self.grademin)
        return min(1.0, max(0.0, share))

    @classmethod
    def from_json(cls, data: Any, courseid: int) -> CourseGrading:
        r = _Reader(data, "local_archepredict_get_course_grading")
        grademax = r.opt_float("grademax")
        gradepass = r.opt_float("gradepass")
        if grademax is None or gradepass is None:
            raise MalformedResponseError(
                "local_archepredict_get_course_grading: 'grademax' and 'gradepass' are required"
            )
        return cls(
            courseid=courseid,
            itemid=r.get_int("itemid"),
            gradetype=r.get_int("gradetype"),
            grademin=r.opt_float("grademin") or 0.0,
            grademax=grademax,
            gradepass=gradepass,
            aggregation=r.opt_int("aggregation"),
            aggregateonlygraded=r.get_bool("aggregateonlygraded"),
        )


@dataclass(frozen=True)
class CourseModule:
    """An activity of ``core_course_get_contents``. ``dates`` maps Moodle's ``dataid``
    (``duedate``, ``timeopen``...) to epoch seconds."""

    id: int
    name: str
    modname: str
    instance: int | None
    visible: bool
    uservisible: bool
    completion: int
    url: str | None
    dates: tuple[tuple[str, int], ...]

    @classmethod
    def from_json(cls, data: Any) -> CourseModule:
        r = _Reader(data, "course module")
        dates: list[tuple[str, int]] = []
        for d in (_Reader(x, "module date") for x in r.get_list("dates", required=False)):
            timestamp = d.opt_int("timestamp")
            if timestamp is not None:
                dates.append((d.get_str("dataid", d.get_str("label", "")), timestamp))
        return cls(
            id=r.get_int("id"),
            name=r.get_str("name", ""),
            modname=r.get_str("modname"),
            instance=r.opt_int("instance"),
            visible=r.get_bool("visible", True),
            uservisible=r.get_bool("uservisible", True),
            completion=r.opt_int("completion") or 0,
            url=r.opt_str("url"),
            dates=tuple(dates),
        )


@dataclass(frozen=True)
class CourseSection:
    id: int
    section: int
    name: str
    visible: bool
    modules: tuple[CourseModule, ...]

    @classmethod
    def from_json(cls, data: Any) -> CourseSection:
        r = _Reader(data, "course section")
        return cls(
            id=r.get_int("id"),
            section=r.opt_int("section") or 0,
            name=r.get_str("name", ""),
            visible=r.get_bool("visible", True),
            modules=tuple(CourseModule.from_json(x) for x in r.get_list("modules", required=False)),
        )


@dataclass(frozen=True)
class ActivityCompletion:
    """One activity's completion for one user
    (``core_completion_get_activities_completion_status``).

    ``state``: 0 incomplete, 1 complete, 2 complete-pass, 3 complete-fail.
    """

    cmid: int
    modname: str
    instance: int | None
    state: int
    timecompleted: int
    tracking: int
    overrideby: int | None
    hascompletion: bool
    isautomatic: bool

    @classmethod
    def from_json(cls, data: Any) -> ActivityCompletion:
        r = _Reader(data, "completion status")
        return cls(
            cmid=r.get_int("cmid"),
            modname=r.get_str("modname", ""),
            instance=r.opt_int("instance"),
            state=r.get_int("state"),
            timecompleted=r.opt_int("timecompleted") or 0,
            tracking=r.opt_int("tracking") or 0,
            overrideby=r.opt_int("overrideby"),
            hascompletion=r.get_bool("hascompletion", True),
            isautomatic=r.get_bool("isautomatic"),
        )
