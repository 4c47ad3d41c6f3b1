"""``arche-predict moodle check``: what the Moodle admin must still configure.

``check`` is pure: it takes the site info and, optionally, the outcome of probing each function
in a course, and returns a report that the CLI only prints. ``probe_course`` does the I/O: it
calls each needed function once, cheaply, and records the error it raised (or None). Keeping the
two apart lets tests feed recorded errors, and lets the sync reuse the probe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from moodle_client.client import COURSE_VIEW, REQUIRE_LOGIN
from moodle_client.errors import AccessDeniedError, MissingCapabilityError, MoodleError
from moodle_client.grade_coverage import (
    GRADEITEMS_FUNCTION,
    CourseGradeItem,
    GradeCoverage,
    HiddenGradeItem,
    compare_grade_items,
    course_grade_items_from_json,
)
from moodle_client.requirements import (
    LOG_FUNCTION,
    OPTIONAL_FEATURES,
    REQUIRED_FUNCTIONS,
    FunctionRequirement,
    OptionalFeature,
)
from moodle_client.types import CourseSection, GradeReport, SiteInfo

if TYPE_CHECKING:
    from moodle_client.client import MoodleClient

__all__ = [
    "COMPLETION_FUNCTION",
    "COURSE_VIEW",
    "GROUPS_FUNCTION",
    "CheckReport",
    "CourseProbe",
    "MissingCapability",
    "MissingFunction",
    "OptionalStatus",
    "ProbeFailure",
    "Unverified",
    "check",
    "optional_statuses",
    "probe_course",
    "probe_course_details",
    "required_functions",
    "run_check",
]


@dataclass(frozen=True)
class MissingFunction:
    name: str
    purpose: str

    @property
    def advice(self) -> str:
        plugin = (
            " It comes with the companion plugin local_archepredict: install it first."
            if self.name == LOG_FUNCTION
            else ""
        )
        return (
            f"Add the function '{self.name}' ({self.purpose}) to the token's external service: "
            "Site administration > Server > Web services > External services > your service > "
            f"Functions > Add functions.{plugin}"
        )


#: What Moodle answers, to every call in a course, when the token user is not enrolled there and
#: lacks `COURSE_VIEW`: "Course or activity not accessible" [`REQUIRE_LOGIN`], not a
#: ``nopermissions`` naming a capability (the client's errors name it too).
COMPLETION_FUNCTION = "core_completion_get_activities_completion_status"
#: The optional features' read-only calls that `probe_course` also makes, so that a missing
#: capability is named on the first run (never a reason for "NOT READY"). Messages and notes
#: are not probed: trying them would send a message or write a note.
GROUPS_FUNCTION = "core_group_get_course_groups"
OPTIONAL_PROBES = (COMPLETION_FUNCTION, GROUPS_FUNCTION)


@dataclass(frozen=True)
class MissingCapability:
    """A capability the token user lacks, as shown by a probe's ``nopermissions`` error (or by
    ``requireloginerror``, which stands for ``moodle/course:view``).

    ``capability`` is the id when the name is one we know, else None (then ``name`` is what
    Moodle printed). ``function`` names the function(s) that failed.
    """

    function: str
    name: str | None
    capability: str | None
    errorcode: str

    @property
    def advice(self) -> str:
        what = (
            f"'{self.capability}' ({self.name})"
            if self.capability
            else f"the capability named '{self.name or 'unknown'}'"
        )
        if self.errorcode == REQUIRE_LOGIN:
            return (
                f"Moodle answered 'Course or activity not accessible' [{REQUIRE_LOGIN}] to "
                f"{self.function}: the web-service user is not enrolled in the course and may "
                f"not view courses it is not enrolled in. Allow {what} for its role at system "
                "(or category) level: Site administration > Users > Permissions > Define "
                "roles. A hidden course also needs 'moodle/course:viewhiddencourses'."
            )
        return (
            f"Allow {what} for the web-service user's role in the course (needed by "
            f"{self.function}): Site administration > Users > Permissions > Define roles."
        )


@dataclass(frozen=True)
class Unverified:
    """A capability the tool needs that no probe could try this time, and why."""

    capability: str
    function: str
    reason: str


@dataclass(frozen=True)
class ProbeFailure:
    """A probe that failed for another reason than a missing function or capability."""

    function: str
    error: MoodleError

    @property
    def advice(self) -> str:
        return f"{self.function}: {self.error}"


@dataclass(frozen=True)
class OptionalStatus:
    """An optional feature (`requirements.OPTIONAL_FEATURES`): off when a function it needs is
    not in the token's service, or when its probe in the course (`OPTIONAL_PROBES`) was refused
    for a missing capability. The capabilities of features not probed are listed: without them
    the feature is switched off at its first use, with the explanation on the page."""

    feature: OptionalFeature
    missing_functions: tuple[str, ...]
    refused: MissingCapability | None = None
    #: A probe that failed otherwise (the feature's state is then unknown).
    failure: ProbeFailure | None = None

    @property
    def on(self) -> bool:
        return not self.missing_functions and self.refused is None

    @property
    def line(self) -> str:
        needs = f"its role needs {', '.join(self.feature.capabilities)}"
        head = f"{self.feature.key} ({self.feature.purpose})"
        off = f"{head}: off, the pages say so" + (
            f" ({self.feature.without})" if self.feature.without else ""
        )
        if self.missing_functions:
            return (
                f"{off}. To turn it on, add "
                f"{', '.join(repr(f) for f in self.missing_functions)} to the token's external "
                f"service; {needs}."
            )
        if self.refused is not None:
            return f"{off}. {self.refused.advice}"
        if self.failure is not None:
            return f"{head}: in the service, but its probe failed ({self.failure.advice}); {needs}."
        return f"{head}: available; {needs}."


def optional_statuses(
    site: SiteInfo, probes: Mapping[str, MoodleError | None] | None = None
) -> tuple[OptionalStatus, ...]:
    """Each optional feature, on or off by the functions of the token's service and by what
    probing its read-only function in a course found (`OPTIONAL_PROBES`)."""
    available = site.function_names
    probes = probes or {}
    out: list[OptionalStatus] = []
    for feature in OPTIONAL_FEATURES:
        missing = [n for n in feature.functions if n not in available]
        refused: MissingCapability | None = None
        failure: ProbeFailure | None = None
        for name in feature.functions:
            error = probes.get(name)
            if error is None or error.errorcode == REQUIRE_LOGIN:  # said as unverified
                continue
            if isinstance(error, AccessDeniedError):
                missing.append(name)
            elif isinstance(error, MissingCapabilityError):
                refused = refused or MissingCapability(
                    function=name,
                    name=error.capability_name,
                    capability=error.capabilities[0] if error.capabilities else None,
                    errorcode=error.errorcode,
                )
            else:
                failure = failure or ProbeFailure(name, error)
        out.append(OptionalStatus(feature, tuple(dict.fromkeys(missing)), refused, failure))
    return tuple(out)


@dataclass(frozen=True)
class CheckReport:
    site: SiteInfo
    log_source: str
    missing_functions: tuple[MissingFunction, ...]
    missing_capabilities: tuple[MissingCapability, ...]
    other_failures: tuple[ProbeFailure, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    #: Grade items of the course that the grade report leaves out (a missing ``mod/*:view``).
    hidden_grade_items: tuple[HiddenGradeItem, ...] = ()
    #: Capabilities no probe could try (a call refused earlier, no participant to try it on).
    unverified: tuple[Unverified, ...] = ()
    #: The optional features (issue #16): never a reason for "NOT READY".
    optional: tuple[OptionalStatus, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing blocks a sync (warnings and unverified capabilities do not)."""
        return not (
            self.missing_functions
            or self.missing_capabilities
            or self.other_failures
            or self.hidden_grade_items
        )

    def lines(self) -> list[str]:
        """The report as text lines for a terminal, in the admin's order of work."""
        out = [
            f"Moodle {self.site.release or self.site.version} at {self.site.siteurl}, "
            f"token user '{self.site.username}' (id {self.site.userid}), "
            f"log source '{self.log_source}'."
        ]
        if self.missing_functions:
            out.append("Functions missing from the token's external service:")
            out += [f"  - {m.name}: {m.advice}" for m in self.missing_functions]
        if self.missing_capabilities:
            out.append("Capabilities the token user lacks:")
            out += [
                f"  - {m.capability or m.name or 'unknown'}: {m.advice}"
                for m in self.missing_capabilities
            ]
        if self.hidden_grade_items:
            out.append("Grade items Moodle leaves out (the token user cannot view the activity):")
            out += [
                f"  - {h.capability or 'mod/<module>:view'}: {h.advice}"
                for h in self.hidden_grade_items
            ]
        if self.other_failures:
            out.append("Other failures:")
            out += [f"  - {f.advice}" for f in self.other_failures]
        if self.unverified:
            out.append(
                "Not verified yet (grant them now to save a second run; rerun to check them):"
            )
            grouped: dict[tuple[str, str], list[str]] = {}
            for u in self.unverified:
                grouped.setdefault((u.function, u.reason), []).append(u.capability)
            out += [
                f"  - {', '.join(capabilities)} (needed by {function}): {reason}"
                for (function, reason), capabilities in grouped.items()
            ]
        if self.optional:
            out.append("Optional features (the tool works without them):")
            out += [f"  - {o.line}" for o in self.optional]
        out += [f"Warning: {w}" for w in self.warnings]
        out.append(
            "OK: nothing missing." if self.ok else "NOT READY: fix the items above, then rerun."
        )
        return out


def required_functions(log_source: str = "ws") -> tuple[FunctionRequirement, ...]:
    """The functions the tool calls with that log source (the plugin's only for ``ws``)."""
    return tuple(r for r in REQUIRED_FUNCTIONS if log_source == "ws" or not r.log_source_ws_only)


def check(
    site: SiteInfo,
    probes: Mapping[str, MoodleError | None] | None = None,
    *,
    log_source: str = "ws",
    coverage: GradeCoverage | None = None,
    unverified: tuple[Unverified, ...] = (),
) -> CheckReport:
    """Compare what the tool needs with what the site allows.

    A function is missing when the service does not list it, or when its probe raised
    ``accessexception``. A capability is missing when a probe raised ``nopermissions``-like, or
    ``requireloginerror`` (``moodle/course:view``, named once for every function it stopped;
    the capabilities those functions need beyond it are then listed as not verified). A grade
    item is hidden when ``coverage`` (the course's items against the report's) says so.
    """
    probes = probes or {}
    available = site.function_names
    missing_functions: list[MissingFunction] = []
    missing_capabilities: list[MissingCapability] = []
    others: list[ProbeFailure] = []
    refused: list[FunctionRequirement] = []
    for requirement in required_functions(log_source):
        error = probes.get(requirement.name)
        if requirement.name not in available or isinstance(error, AccessDeniedError):
            missing_functions.append(MissingFunction(requirement.name, requirement.purpose))
            continue
        if error is not None and error.errorcode == REQUIRE_LOGIN:
            refused.append(requirement)
        elif isinstance(error, MissingCapabilityError):
            capability = error.capabilities[0] if error.capabilities else None
            missing_capabilities.append(
                MissingCapability(
                    function=requirement.name,
                    name=error.capability_name,
                    capability=capability,
                    errorcode=error.errorcode,
                )
            )
        elif error is not None:
            others.append(ProbeFailure(requirement.name, error))
    not_tried = list(unverified)
    if refused:
        missing_capabilities.insert(
            0,
            MissingCapability(
                function=", ".join(r.name for r in refused),
                name="View courses without participation",
                capability=COURSE_VIEW,
                errorcode=REQUIRE_LOGIN,
            ),
        )
        not_tried += [
            Unverified(
                capability, r.name, f"Moodle refused the call before checking it ({COURSE_VIEW})"
            )
            for r in refused
            for capability in r.capabilities
            if capability != COURSE_VIEW and capability not in {u.capability for u in unverified}
        ]
    for feature in OPTIONAL_FEATURES:
        for name in feature.functions:
            error = probes.get(name)
            if error is not None and error.errorcode == REQUIRE_LOGIN:
                not_tried += [
                    Unverified(
                        capability,
                        name,
                        f"Moodle refused the call before checking it ({COURSE_VIEW})",
                    )
                    for capability in feature.capabilities
                    if capability not in {u.capability for u in not_tried}
                ]
    warnings: list[str] = []
    if coverage is None or not coverage.compared:
        warnings.append(
            "Moodle silently leaves out grade items of activities the token user cannot view: "
            "make sure its role has mod/assign:view, mod/quiz:view and the other activities' "
            "view capabilities in the course."
            + (f" Not compared here: {coverage.reason}." if coverage and coverage.reason else "")
        )
    if not probes:
        warnings.append(
            "Capabilities were not probed (no course given): only the service's functions "
            "were checked."
        )
    return CheckReport(
        site=site,
        log_source=log_source,
        missing_functions=tuple(missing_functions),
        missing_capabilities=tuple(missing_capabilities),
        other_failures=tuple(others),
        warnings=tuple(warnings),
        hidden_grade_items=coverage.hidden if coverage else (),
        unverified=tuple(not_tried),
        optional=optional_statuses(site, probes),
    )


@dataclass(frozen=True)
class CourseProbe:
    """What probing a course found: each function's error (or None), the grade items the
    report leaves out, and the capabilities no probe could try."""

    errors: dict[str, MoodleError | None]
    coverage: GradeCoverage | None
    unverified: tuple[Unverified, ...]


def probe_course(
    client: MoodleClient, courseid: int, site: SiteInfo, *, log_source: str = "ws"
) -> dict[str, MoodleError | None]:
    """Call each needed function once in ``courseid`` (smallest possible answer) and record the
    ``MoodleError`` it raised, or None. Functions absent from the service are not called."""
    return probe_course_details(client, courseid, site, log_source=log_source).errors


def probe_course_details(
    client: MoodleClient, courseid: int, site: SiteInfo, *, log_source: str = "ws"
) -> CourseProbe:
    """``probe_course``, keeping what the calls returned to compare the course's grade items
    with the report's, and saying which capabilities could not be tried.

    Completion is per user, and asking for another user's is what needs
    ``report/progress:view``: the probe asks for a participant other than the token user, taken
    from the roster, else from the grade report, so that a roster refused for another reason
    does not hide this capability until a second run.
    """
    participants: list[int] = []
    reports: list[GradeReport] = []
    contents_read: list[list[CourseSection]] = []

    def enrolled_users() -> None:
        participants.extend(u.id for u in client.get_enrolled_users(courseid, limitnumber=5))

    def grade_report() -> None:
        report = client.get_grade_items(courseid)
        reports.append(report)
        participants.extend(u.userid for u in report.usergrades)

    def contents() -> None:
        contents_read.append(client.get_course_contents(courseid))

    completion_tried: list[bool] = []

    def completion() -> None:
        others = [p for p in participants if p != site.userid]
        if others:
            completion_tried.append(True)
            client.get_activities_completion_status(courseid, others[-1])

    calls: dict[str, Callable[[], object]] = {
        "core_course_get_courses_by_field": lambda: client.get_course(courseid),
        "core_enrol_get_enrolled_users": enrolled_users,
        "gradereport_user_get_grade_items": grade_report,
        "core_course_get_contents": contents,
        COMPLETION_FUNCTION: completion,
        GROUPS_FUNCTION: lambda: client.call(GROUPS_FUNCTION, {"courseid": courseid}),
        LOG_FUNCTION: lambda: client.get_course_logs(courseid, afterid=0, limit=1),
    }
    results: dict[str, MoodleError | None] = {}
    # The optional probes last: completion asks about a participant the others read.
    for name in [*(r.name for r in required_functions(log_source)), *OPTIONAL_PROBES]:
        call = calls.get(name)
        if call is None or name not in site.function_names:
            continue
        try:
            call()
        except MoodleError as error:
            results[name] = error
        else:
            results[name] = None
    unverified: tuple[Unverified, ...] = ()
    tried_nobody = COMPLETION_FUNCTION in results and not completion_tried
    if tried_nobody and results[COMPLETION_FUNCTION] is None:
        del results[COMPLETION_FUNCTION]
        unverified = (
            Unverified(
                "report/progress:view",
                COMPLETION_FUNCTION,
                "no participant of the course could be read to try it on",
            ),
        )
    course_items: tuple[CourseGradeItem, ...] | None = None
    if GRADEITEMS_FUNCTION in site.function_names:
        try:
            course_items = course_grade_items_from_json(
                client.call(GRADEITEMS_FUNCTION, {"courseid": courseid})
            )
        except MoodleError as error:
            reason = f"'{GRADEITEMS_FUNCTION}' failed [{error.errorcode}]"
            return CourseProbe(results, GradeCoverage(False, reason=reason), unverified)
    coverage = compare_grade_items(
        course_items,
        reports[0] if reports else None,
        contents_read[0] if contents_read else None,
    )
    return CourseProbe(results, coverage, unverified)


def run_check(
    client: MoodleClient, courseid: int | None = None, *, log_source: str = "ws"
) -> CheckReport:
    """Site info, probes in ``courseid`` when given, then ``check``: what the CLI calls."""
    site = client.get_site_info()
    if not courseid:
        return check(site, {}, log_source=log_source)
    probe = probe_course_details(client, courseid, site, log_source=log_source)
    return check(
        site,
        probe.errors,
        log_source=log_source,
        coverage=probe.coverage,
        unverified=probe.unverified,
    )
