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

from moodle_client.errors import AccessDeniedError, MissingCapabilityError, MoodleError
from moodle_client.requirements import LOG_FUNCTION, REQUIRED_FUNCTIONS, FunctionRequirement
from moodle_client.types import SiteInfo

if TYPE_CHECKING:
    from moodle_client.client import MoodleClient

__all__ = [
    "CheckReport",
    "MissingCapability",
    "MissingFunction",
    "ProbeFailure",
    "check",
    "probe_course",
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


@dataclass(frozen=True)
class MissingCapability:
    """A capability the token user lacks, as shown by a probe's ``nopermissions`` error.

    ``capability`` is the id when the name is one we know, else None (then ``name`` is what
    Moodle printed).
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
        return (
            f"Allow {what} for the web-service user's role in the course (needed by "
            f"{self.function}): Site administration > Users > Permissions > Define roles."
        )


@dataclass(frozen=True)
class ProbeFailure:
    """A probe that failed for another reason than a missing function or capability."""

    function: str
    error: MoodleError

    @property
    def advice(self) -> str:
        return f"{self.function}: {self.error}"


@dataclass(frozen=True)
class CheckReport:
    site: SiteInfo
    log_source: str
    missing_functions: tuple[MissingFunction, ...]
    missing_capabilities: tuple[MissingCapability, ...]
    other_failures: tuple[ProbeFailure, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing blocks a sync (warnings do not)."""
        return not (self.missing_functions or self.missing_capabilities or self.other_failures)

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
        if self.other_failures:
            out.append("Other failures:")
            out += [f"  - {f.advice}" for f in self.other_failures]
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
) -> CheckReport:
    """Compare what the tool needs with what the site allows.

    A function is missing when the service does not list it, or when its probe raised
    ``accessexception``. A capability is missing when a probe raised ``nopermissions``-like.
    """
    probes = probes or {}
    available = site.function_names
    missing_functions: list[MissingFunction] = []
    missing_capabilities: list[MissingCapability] = []
    others: list[ProbeFailure] = []
    for requirement in required_functions(log_source):
        error = probes.get(requirement.name)
        if requirement.name not in available or isinstance(error, AccessDeniedError):
            missing_functions.append(MissingFunction(requirement.name, requirement.purpose))
            continue
        if isinstance(error, MissingCapabilityError):
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
    warnings = [
        "Moodle silently leaves out grade items of activities the token user cannot view: "
        "make sure its role has mod/assign:view, mod/quiz:view and the other activities' "
        "view capabilities in the course."
    ]
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
    )


def probe_course(
    client: MoodleClient, courseid: int, site: SiteInfo, *, log_source: str = "ws"
) -> dict[str, MoodleError | None]:
    """Call each needed function once in ``courseid`` (smallest possible answer) and record the
    ``MoodleError`` it raised, or None. Functions absent from the service are not called."""
    enrolled: list[int] = []

    def enrolled_users() -> None:
        enrolled.extend(u.id for u in client.get_enrolled_users(courseid, limitnumber=5))

    def completion() -> None:
        # Completion is per user and the token user is rarely enrolled: probe a participant.
        if enrolled:
            client.get_activities_completion_status(courseid, enrolled[-1])

    calls: dict[str, Callable[[], object]] = {
        "core_course_get_courses_by_field": lambda: client.get_course(courseid),
        "core_enrol_get_enrolled_users": enrolled_users,
        "gradereport_user_get_grade_items": lambda: client.get_grade_items(courseid),
        "core_course_get_contents": lambda: client.get_course_contents(courseid),
        "core_completion_get_activities_completion_status": completion,
        LOG_FUNCTION: lambda: client.get_course_logs(courseid, afterid=0, limit=1),
    }
    results: dict[str, MoodleError | None] = {}
    for requirement in required_functions(log_source):
        call = calls.get(requirement.name)
        if call is None or requirement.name not in site.function_names:
            continue
        try:
            call()
        except MoodleError as error:
            results[requirement.name] = error
        else:
            results[requirement.name] = None
    return results


def run_check(
    client: MoodleClient, courseid: int | None = None, *, log_source: str = "ws"
) -> CheckReport:
    """Site info, probes in ``courseid`` when given, then ``check``: what the CLI calls."""
    site = client.get_site_info()
    probes = probe_course(client, courseid, site, log_source=log_source) if courseid else {}
    return check(site, probes, log_source=log_source)
