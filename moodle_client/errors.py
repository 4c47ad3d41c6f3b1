"""The error hierarchy of the Moodle client.

Moodle answers almost every failure with HTTP 200 and a JSON body
``{"exception", "errorcode", "message"}`` (a few paths use ``{"error", "errorcode"}``). The
message alone rarely tells a Moodle admin what to change, so every error here carries Moodle's
``errorcode`` verbatim *and* an ``explanation`` written for the admin: which capability to grant,
which function to add to the external service. The sync run records both, and
``arche-predict moodle check`` prints them.

No error ever holds the token: messages are built from the wsfunction and Moodle's own text, and
anything that came from ``requests`` is scrubbed before it gets here (see ``client.py``).
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "InvalidParameterError",
    "InvalidRecordError",
    "InvalidTokenError",
    "MalformedResponseError",
    "MissingCapabilityError",
    "MoodleError",
    "MoodleHTTPError",
    "MoodleRemoteError",
    "MoodleTimeoutError",
    "MoodleUnavailableError",
]


class MoodleError(Exception):
    """Base of every error the client raises.

    ``errorcode`` is Moodle's code when Moodle sent one, otherwise a code of ours
    (``unavailable``, ``timeout``, ``malformedresponse``, ``http<status>``) so that callers can
    always store and compare a code.
    """

    default_errorcode = "moodleerror"

    def __init__(
        self,
        message: str,
        *,
        errorcode: str | None = None,
        explanation: str = "",
        wsfunction: str | None = None,
        exception: str | None = None,
        debuginfo: str | None = None,
    ) -> None:
        self.message = message
        self.errorcode = errorcode or self.default_errorcode
        self.explanation = explanation
        self.wsfunction = wsfunction
        self.exception = exception
        self.debuginfo = debuginfo
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.wsfunction}: " if self.wsfunction else ""
        text = f"{where}{self.message} [{self.errorcode}]"
        if self.explanation:
            text += f" - {self.explanation}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(errorcode={self.errorcode!r}, wsfunction={self.wsfunction!r}, "
            f"message={self.message!r})"
        )


class MoodleRemoteError(MoodleError):
    """Moodle itself refused the call with an error body (any errorcode we do not map better)."""


class InvalidTokenError(MoodleRemoteError):
    """``invalidtoken``: the token does not exist, was deleted, expired or is empty."""

    default_errorcode = "invalidtoken"


class AccessDeniedError(MoodleRemoteError):
    """``accessexception``: the function is not in the token's service, or the token user may
    not use the REST protocol. Moodle answers both with the same code, so the explanation names
    both causes."""

    default_errorcode = "accessexception"


class MissingCapabilityError(MoodleRemoteError):
    """``nopermissions`` / ``required_capability_exception`` (and report-builder
    ``errorreportview``): the token user lacks a capability in the course.

    ``capability_name`` is the human name Moodle put in the message ("View participants"),
    ``capabilities`` the capability ids we believe it stands for (empty when unknown).
    """

    default_errorcode = "nopermissions"

    def __init__(
        self,
        message: str,
        *,
        errorcode: str | None = None,
        explanation: str = "",
        wsfunction: str | None = None,
        exception: str | None = None,
        debuginfo: str | None = None,
        capability_name: str | None = None,
        capabilities: tuple[str, ...] = (),
    ) -> None:
        self.capability_name = capability_name
        self.capabilities = capabilities
        super().__init__(
            message,
            errorcode=errorcode,
            explanation=explanation,
            wsfunction=wsfunction,
            exception=exception,
            debuginfo=debuginfo,
        )


class InvalidParameterError(MoodleRemoteError):
    """``invalidparameter``: a parameter was missing or of the wrong type. A bug on our side or
    a Moodle version whose signature differs."""

    default_errorcode = "invalidparameter"


class InvalidRecordError(MoodleRemoteError):
    """``invalidrecord`` / ``invalidrecordunknown``: a record (course, user...) does not exist.
    Moodle also answers this for a *function* that does not exist (an uninstalled plugin)."""

    default_errorcode = "invalidrecordunknown"


class MoodleUnavailableError(MoodleError):
    """Moodle could not be reached or did not answer properly: connection refused, DNS, TLS,
    5xx after every retry, maintenance mode. Worth retrying later; nothing to fix in Moodle's
    configuration unless it persists."""

    default_errorcode = "unavailable"


class MoodleTimeoutError(MoodleUnavailableError):
    """No answer within the configured timeout, after every retry."""

    default_errorcode = "timeout"


class MoodleHTTPError(MoodleError):
    """A 4xx status: usually a wrong base URL (404), a proxy or firewall (403), or the REST
    protocol disabled. Not retried: the same request would fail the same way."""

    default_errorcode = "http"


class MalformedResponseError(MoodleError):
    """The answer is not the JSON we expect: HTML instead of JSON, truncated JSON, or JSON of
    the wrong shape (a Moodle version or plugin that changed the function's return)."""

    default_errorcode = "malformedresponse"
