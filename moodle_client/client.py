"""``MoodleClient``: Moodle's REST web-service protocol over ``requests``.

Every call is a POST to ``/webservice/rest/server.php`` with ``wstoken``, ``wsfunction`` and
``moodlewsrestformat=json``; the token travels in the body, never in the URL, so that proxies
and access logs do not record it. Moodle answers errors with HTTP 200 and an error body, so each
answer is checked for one before it is used.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any

import requests

from moodle_client.errors import (
    AccessDeniedError,
    InvalidParameterError,
    InvalidRecordError,
    InvalidTokenError,
    MalformedResponseError,
    MissingCapabilityError,
    MoodleError,
    MoodleHTTPError,
    MoodleRemoteError,
    MoodleTimeoutError,
    MoodleUnavailableError,
)
from moodle_client.logs import LogPage, log_rows_from_json
from moodle_client.requirements import (
    GRADING_FUNCTION,
    LOG_FUNCTION,
    capability_from_message,
    requirement_for,
)
from moodle_client.types import (
    ActivityCompletion,
    Course,
    CourseGrading,
    CourseSection,
    EnrolledUser,
    GradeReport,
    SiteInfo,
    _Reader,
    expect_list,
)

__all__ = ["REST_PATH", "MoodleClient", "default_user_agent", "encode_params", "error_from_body"]

REST_PATH = "/webservice/rest/server.php"
logger = logging.getLogger("moodle_client")

#: Statuses worth another try: the server or a proxy in front of it is overloaded or restarting.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_REDACTED = "[redacted]"


def default_user_agent() -> str:
    """``arche-predict/<version>``: lets a Moodle admin find our calls in the web server log."""
    try:
        version = metadata.version("arche-predict")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"arche-predict/{version}"


def encode_params(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Form-encode nested parameters the way Moodle's REST server reads them.

    ``{"options": [{"name": "limitfrom", "value": 0}]}`` becomes
    ``options[0][name]=limitfrom&options[0][value]=0``; booleans become ``1``/``0`` (PHP's
    cast) and None is left out (Moodle then applies the parameter's default).
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs.extend(_encode_value(name, value))
    return pairs


def _encode_value(name: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, bool):
        return [(name, "1" if value else "0")]
    if isinstance(value, Mapping):
        return encode_params(value, name)
    if isinstance(value, list | tuple):
        pairs: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            pairs.extend(_encode_value(f"{name}[{index}]", item))
        return pairs
    if isinstance(value, int | float | str):
        return [(name, str(value))]
    raise TypeError(f"cannot encode a {type(value).__name__} as a Moodle parameter ({name})")


#: Moodle's answer to every call in a course that the token user is not enrolled in, without
#: this capability: "Course or activity not accessible" [requireloginerror], which names no
#: capability itself (`moodle_client.check` says the same).
REQUIRE_LOGIN = "requireloginerror"
COURSE_VIEW = "moodle/course:view"
COURSE_VIEW_NAME = "View courses without participation"


def _explain(errorcode: str, wsfunction: str | None, message: str) -> tuple[type[MoodleError], str]:
    """The exception class and admin-facing explanation for one Moodle errorcode."""
    function = wsfunction or "the function"
    requirement = requirement_for(wsfunction)
    if errorcode in {"invalidtoken", "invalidtokensession"}:
        return InvalidTokenError, (
            "Moodle does not know this token (deleted, expired, mistyped or empty). Create a "
            "token for the web-service user in Site administration > Server > Web services > "
            "Manage tokens and store it in arche-predict's configuration."
        )
    if errorcode in {"invalidiptoken"}:
        return InvalidTokenError, (
            "The token is restricted to other IP addresses. In Manage tokens, add this "
            "server's address to the token's IP restriction or clear it."
        )
    if errorcode == "accessexception":
        return AccessDeniedError, (
            f"Either '{function}' is not a function of this token's external service (add it in "
            "Site administration > Server > Web services > External services > your service > "
            "Functions > Add functions), or the token user lacks 'webservice/rest:use' at "
            "system level, or the user is not an authorised user of a restricted service. "
            "`arche-predict moodle check` tells which."
        )
    if errorcode == REQUIRE_LOGIN:
        return MissingCapabilityError, (
            f"The token user cannot enter the course: it lacks the capability '{COURSE_VIEW}' "
            f"({COURSE_VIEW_NAME}) and is not enrolled in it. Allow '{COURSE_VIEW}' for the "
            "web-service user's system role in Site administration > Users > Permissions > "
            "Define roles (or enrol the user in the course); every call in the course fails "
            "until then."
        )
    if errorcode in {"nopermissions", "errorreportview"} or "capability" in errorcode:
        name, capabilities = capability_from_message(message)
        if capabilities:
            missing = f"the capability '{capabilities[0]}' ({name})"
        elif name:
            missing = f"the capability named '{name}'"
        else:
            missing = "a capability"
        needed = (
            f" {function} needs: {', '.join(requirement.capabilities)}."
            if requirement and requirement.capabilities
            else ""
        )
        return MissingCapabilityError, (
            f"The token user lacks {missing} in the course. Allow it for the role the "
            f"web-service user holds there (or a system role) in Site administration > "
            f"Users > Permissions > Define roles.{needed}"
        )
    if errorcode == "invalidparameter":
        return InvalidParameterError, (
            f"Moodle rejected the parameters sent to {function}. This is a bug in arche-predict "
            "or a Moodle version whose signature differs (supported: Moodle 4.1 to 5.x); report "
            "it with the Moodle release that `arche-predict moodle check` shows."
        )
    if errorcode in {"invalidrecord", "invalidrecordunknown"}:
        if wsfunction == LOG_FUNCTION:
            hint = (
                "Either the course does not exist, or the companion plugin local_archepredict "
                "is not installed on this Moodle (install it from moodle_plugin/ and run the "
                "upgrade)."
            )
        else:
            hint = (
                f"Either a record asked for does not exist (a wrong or deleted course id?), or "
                f"'{function}' does not exist on this Moodle version (Moodle answers an unknown "
                "function with the same error)."
            )
        return InvalidRecordError, hint
    if errorcode == "disabled" and wsfunction == "core_message_send_instant_messages":
        return MoodleRemoteError, (
            "Messaging is disabled on this Moodle site: no message can be sent until an "
            "administrator enables it (Site administration > General > Messaging > Enable "
            "messaging). The addresses can still be copied from the page."
        )
    if errorcode in {"sitemaintenance", "maintenancemode"}:
        return MoodleUnavailableError, (
            "Moodle is in maintenance mode. The next sync will try again; nothing to change."
        )
    return MoodleRemoteError, (
        f"Moodle refused {function} with error '{errorcode}'. See Moodle's message; with "
        "debugging enabled Moodle adds details to the web-service answer."
    )


def error_from_body(body: Mapping[str, Any], wsfunction: str | None) -> MoodleError:
    """The exception for a Moodle error body (``exception`` or ``error`` form)."""
    errorcode = str(body.get("errorcode") or "").strip() or "unknown"
    message = str(body.get("message") or body.get("error") or "").strip() or errorcode
    cls, explanation = _explain(errorcode, wsfunction, message)
    debuginfo = body.get("debuginfo")
    kwargs: dict[str, Any] = {
        "errorcode": errorcode,
        "explanation": explanation,
        "wsfunction": wsfunction,
        "exception": str(body["exception"]) if body.get("exception") else None,
        "debuginfo": str(debuginfo) if debuginfo else None,
    }
    if errorcode == REQUIRE_LOGIN:
        kwargs["capability_name"], kwargs["capabilities"] = COURSE_VIEW_NAME, (COURSE_VIEW,)
    elif cls is MissingCapabilityError:
        kwargs["capability_name"], kwargs["capabilities"] = capability_from_message(message)
    error: MoodleError = cls(message, **kwargs)
    return error


def _is_error_body(data: Any) -> bool:
    if not isinstance(data, Mapping):
        return False
    if "exception" in data and "errorcode" in data:
        return True
    return "errorcode" in data and "error" in data


class MoodleClient:
    """A Moodle site's REST web services, for one token.

    ``session`` lets callers share a connection pool or mount a test adapter. ``sleep``, ``rng``
    and ``clock`` are injectable so tests run retries instantly and deterministically. Calls that
    fail on the network or with a 5xx are retried ``max_retries`` times with exponential backoff
    and full jitter (``uniform(0, min(cap, base * 2**attempt))``), because every function this
    client calls is read-only and so safe to repeat. Moodle error bodies and 4xx are never
    retried: the same request would fail the same way.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        user_agent: str | None = None,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.__token = token
        self.base_url = base_url.rstrip("/")
        self.endpoint = self.base_url + REST_PATH
        #: The base URL as shown in messages and repr: without the token, should an admin have
        #: pasted it into the URL.
        self.shown_url = self.scrub(self.base_url)
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.user_agent = user_agent or default_user_agent()
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._clock = clock

    def __repr__(self) -> str:
        return f"MoodleClient(base_url={self.shown_url!r}, token={_REDACTED!r})"

    # ------------------------------------------------------------------ protocol
    def scrub(self, text: str) -> str:
        """``text`` with the token replaced: for anything that may have seen the request."""
        if self.__token:
            text = text.replace(self.__token, _REDACTED)
        return text

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (full jitter)."""
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def call(
        self, wsfunction: str, params: Mapping[str, Any] | None = None, *, retry: bool = True
    ) -> Any:
        """Call one function and return its decoded JSON, or raise a ``MoodleError``.

        ``retry=False`` for a call that must not be made twice (sending a message): a timeout
        or a 5xx then raises at once, and the caller treats the outcome as unknown.
        """
        data = [
            ("wstoken", self.__token),
            ("wsfunction", wsfunction),
            ("moodlewsrestformat", "json"),
            *encode_params(params or {}),
        ]
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        started = self._clock()
        attempt = 0
        while True:
            failure: MoodleUnavailableError
            try:
                response = self.session.post(
                    self.endpoint, data=data, headers=headers, timeout=self.timeout
                )
            except requests.Timeout:
                failure = MoodleTimeoutError(
                    f"no answer from {self.shown_url} within {self.timeout:g} s",
                    wsfunction=wsfunction,
                    explanation="Moodle is slow or unreachable. The next sync will try again; "
                    "if it persists, check the server and the configured timeout.",
                )
            except requests.RequestException as exc:
                failure = MoodleUnavailableError(
                    f"cannot reach {self.shown_url}: {self.scrub(type(exc).__name__)}: "
                    f"{self.scrub(_short(str(exc)))}",
                    wsfunction=wsfunction,
                    explanation="The network or Moodle is down (connection refused, DNS, TLS). "
                    "The next sync will try again; if it persists, check the base URL.",
                )
            else:
                if response.status_code in _RETRY_STATUSES:
                    failure = MoodleUnavailableError(
                        f"HTTP {response.status_code} from {self.shown_url}",
                        errorcode=f"http{response.status_code}",
                        wsfunction=wsfunction,
                        explanation="Moodle or a proxy in front of it failed (5xx), or Moodle is "
                        "in maintenance. The next sync will try again.",
                    )
                else:
                    result = self._decode(response, wsfunction)
                    logger.debug(
                        "moodle call %s ok in %.3f s (%d attempt(s))",
                        wsfunction,
                        self._clock() - started,
                        attempt + 1,
                    )
                    return result
            if not retry or attempt >= self.max_retries:
                logger.warning("moodle call %s failed: %s", wsfunction, failure)
                raise failure
            delay = self.backoff(attempt)
            logger.warning(
                "moodle call %s failed (%s), retry %d/%d in %.2f s",
                wsfunction,
                failure.message,
                attempt + 1,
                self.max_retries,
                delay,
            )
            self._sleep(delay)
            attempt += 1

    def _decode(self, response: requests.Response, wsfunction: str) -> Any:
        if 400 <= response.status_code < 600:
            raise MoodleHTTPError(
                f"HTTP {response.status_code} from {self.shown_url}{REST_PATH}",
                errorcode=f"http{response.status_code}",
                wsfunction=wsfunction,
                explanation="Check the Moodle base URL and that the REST protocol is enabled "
                "(Site administration > Server > Web services > Manage protocols).",
            )
        text = response.content.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._malformed(text, exc, wsfunction) from None
        if _is_error_body(data):
            error = error_from_body(data, wsfunction)
            logger.info("moodle call %s refused: %s", wsfunction, error.errorcode)
            raise error
        return data

    def _malformed(
        self, text: str, exc: json.JSONDecodeError, wsfunction: str
    ) -> MalformedResponseError:
        stripped = text.strip()
        if not stripped:
            reason = "an empty answer"
        elif stripped.startswith("<"):
            reason = "HTML instead of JSON"
        elif _unclosed(stripped):
            reason = f"truncated JSON (the answer stops after {len(text)} characters)"
        else:
            reason = f"invalid JSON ({exc.msg} at character {exc.pos})"
        return MalformedResponseError(
            f"Moodle answered {reason}",
            wsfunction=wsfunction,
            explanation="The answer was cut off or is not JSON: a proxy, a PHP error or "
            "debugging output in Moodle's answer, or a wrong base URL. Try again; if it persists, "
            "check Moodle's PHP error log and that debugging display is off.",
        )

    # ------------------------------------------------------------------ typed calls
    def get_site_info(self) -> SiteInfo:
        """Site, token user and the functions of the token's service."""
        return SiteInfo.from_json(self.call("core_webservice_get_site_info"))

    def get_courses_by_field(self, field: str = "", value: str | int = "") -> list[Course]:
        """Courses by ``id``, ``ids`` (comma list), ``shortname``, ``idnumber``, ``category``."""
        params = {"field": field, "value": str(value)} if field else {}
        data = _Reader(self.call("core_course_get_courses_by_field", params), "courses")
        return [Course.from_json(c) for c in data.get_list("courses")]

    def get_course(self, courseid: int) -> Course:
        """One course by id; ``InvalidRecordError`` if Moodle returns none (unknown or hidden)."""
        courses = self.get_courses_by_field("id", courseid)
        if not courses:
            _, explanation = _explain("invalidrecordunknown", None, "")
            raise InvalidRecordError(
                f"course {courseid} not found or not visible to the token user",
                errorcode="invalidrecordunknown",
                wsfunction="core_course_get_courses_by_field",
                explanation=explanation,
            )
        return courses[0]

    def get_enrolled_users(
        self,
        courseid: int,
        *,
        limitfrom: int = 0,
        limitnumber: int = 0,
        onlyactive: bool = False,
        userfields: Sequence[str] | None = None,
    ) -> list[EnrolledUser]:
        """One page of participants with their roles (``limitnumber=0``: all), ordered by id."""
        options: list[dict[str, Any]] = [
            {"name": "limitfrom", "value": limitfrom},
            {"name": "limitnumber", "value": limitnumber},
            {"name": "sortby", "value": "id"},
            {"name": "sortdirection", "value": "ASC"},
        ]
        if onlyactive:
            options.append({"name": "onlyactive", "value": 1})
        if userfields:
            options.append({"name": "userfields", "value": ",".join(userfields)})
        data = self.call(
            "core_enrol_get_enrolled_users", {"courseid": courseid, "options": options}
        )
        return [EnrolledUser.from_json(u) for u in expect_list(data, "enrolled users")]

    def iter_enrolled_users(
        self, courseid: int, page_size: int = 500, *, onlyactive: bool = False
    ) -> Iterator[list[EnrolledUser]]:
        """All participants, ``page_size`` per call; stops at the first short page."""
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        offset = 0
        while True:
            page = self.get_enrolled_users(
                courseid, limitfrom=offset, limitnumber=page_size, onlyactive=onlyactive
            )
            if page:
                yield page
            if len(page) < page_size:
                return
            offset += page_size

    def get_grade_items(self, courseid: int, userid: int = 0, groupid: int = 0) -> GradeReport:
        """Grade items and grades; ``userid=0`` returns every user of the course.

        Beware: without ``mod/assign:view``/``mod/quiz:view`` Moodle silently leaves out those
        activities' items; ``check`` warns about it.
        """
        params = {"courseid": courseid, "userid": userid, "groupid": groupid}
        return GradeReport.from_json(
            self.call("gradereport_user_get_grade_items", params), courseid
        )

    def get_course_contents(
        self, courseid: int, options: Mapping[str, Any] | None = None
    ) -> list[CourseSection]:
        """Sections and activities; ``options`` become Moodle's ``[{name, value}]`` list."""
        params: dict[str, Any] = {"courseid": courseid}
        if options:
            params["options"] = [{"name": k, "value": v} for k, v in options.items()]
        data = self.call("core_course_get_contents", params)
        return [CourseSection.from_json(s) for s in expect_list(data, "course contents")]

    def get_activities_completion_status(
        self, courseid: int, userid: int
    ) -> list[ActivityCompletion]:
        """One user's completion of every activity with completion enabled."""
        data = _Reader(
            self.call(
                "core_completion_get_activities_completion_status",
                {"courseid": courseid, "userid": userid},
            ),
            "completion statuses",
        )
        return [ActivityCompletion.from_json(s) for s in data.get_list("statuses")]

    def get_course_grading(self, courseid: int) -> CourseGrading:
        """The course total's pass mark and range (companion plugin, version 0.2.0 or later).

        An older plugin, or a service without the function, answers an error as any missing
        function does (``InvalidRecordError``, ``AccessDeniedError``): callers that can do
        without the pass mark catch ``MoodleError``.
        """
        data = self.call(GRADING_FUNCTION, {"courseid": courseid})
        return CourseGrading.from_json(data, courseid)

    def get_course_logs(
        self, courseid: int, afterid: int = 0, limit: int = 1000, *, withcount: bool = False
    ) -> LogPage:
        """One page of the course's standard log after ``afterid`` (companion plugin).

        ``withcount`` asks the plugin for the number of rows left (one extra COUNT query), for
        a progress bar; ask it on the first page only.
        """
        params: dict[str, Any] = {"courseid": courseid, "afterid": afterid, "limit": limit}
        if withcount:
            params["withcount"] = True
        data = _Reader(self.call(LOG_FUNCTION, params), LOG_FUNCTION)
        rows = log_rows_from_json(data.get_list("logs"))
        lastid = data.get_int("lastid")
        if rows and rows[-1].id != lastid:
            raise MalformedResponseError(
                f"lastid {lastid} is not the id of the page's last row", wsfunction=LOG_FUNCTION
            )
        remaining = data.opt_int("remaining") if withcount else None
        return LogPage(
            rows=rows, cursor=lastid, hasmore=data.get_bool("hasmore"), remaining=remaining
        )


def _unclosed(text: str) -> bool:
    """Whether ``text`` is JSON cut short: it opens with ``{``/``[`` and ends inside a string or
    with brackets still open. Tells a truncated answer from one that is not JSON at all."""
    if not text or text[0] not in "[{":
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return in_string or depth > 0


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
