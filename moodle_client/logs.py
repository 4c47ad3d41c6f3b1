"""Canonical log rows and the log-source interface.

Stock Moodle has no web-service function returning log entries, so logs come from one of three
sources behind one interface (DESIGN.md, "Logs via web services"): ``ws`` (the companion plugin,
here), ``db`` (read-only SQL on a standard-log table, in lti_app because it needs SQLAlchemy) and
``csv`` (Moodle's log-report download, ``moodle_client.csv_logs``). Each yields pages of
``LogRow`` plus a cursor, so the sync can store a page and its cursor in one transaction and
resume after a crash from the last stored cursor.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from moodle_client.errors import MalformedResponseError
from moodle_client.types import _Reader

__all__ = ["LOG_COLUMNS", "LogPage", "LogRow", "LogSource", "WsLogSource", "log_rows_from_json"]

#: The columns of Moodle's ``logstore_standard_log`` that the tool keeps, in table order.
LOG_COLUMNS: tuple[str, ...] = (
    "id",
    "eventname",
    "component",
    "action",
    "target",
    "objecttable",
    "objectid",
    "crud",
    "edulevel",
    "contextid",
    "contextlevel",
    "contextinstanceid",
    "userid",
    "relateduserid",
    "courseid",
    "timecreated",
    "origin",
)


class LogRow(NamedTuple):
    """One standard-log event, whatever source it came from.

    The fields are exactly ``LOG_COLUMNS`` (``timecreated`` in epoch seconds) plus
    ``content_hash``. ``ws`` and ``db`` rows carry Moodle's ``id`` and no hash. ``csv`` rows come
    from a download that has no log id and no context id, so ``id`` and ``contextid`` are None
    and ``content_hash`` (a SHA-256 hex digest) is their identity for de-duplication.

    A named tuple rather than a frozen dataclass: the sync builds millions of them, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost about 5 us a row, seven
    times a tuple's; the store can also splice the tuple into its insert values as it is.
    """

    id: int | None
    eventname: str
    component: str
    action: str
    target: str
    objecttable: str | None
    objectid: int | None
    crud: str
    edulevel: int
    contextid: int | None
    contextlevel: int
    contextinstanceid: int
    userid: int
    relateduserid: int | None
    courseid: int
    timecreated: int
    origin: str | None
    content_hash: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> LogRow:
        """A row of the plugin's answer (every column, ints as ints, nullable ones may be null).

        Checks field by field and names the first bad one; :func:`log_rows_from_json` is the
        fast way to read a whole page and falls back to this for the error message.
        """
        r = _Reader(data, "log row")
        return cls(
            id=r.get_int("id"),
            eventname=r.get_str("eventname"),
            component=r.get_str("component"),
            action=r.get_str("action"),
            target=r.get_str("target"),
            objecttable=r.opt_str("objecttable"),
            objectid=r.opt_int("objectid"),
            crud=r.get_str("crud"),
            edulevel=r.get_int("edulevel"),
            contextid=r.get_int("contextid"),
            contextlevel=r.get_int("contextlevel"),
            contextinstanceid=r.get_int("contextinstanceid"),
            userid=r.get_int("userid"),
            relateduserid=r.opt_int("relateduserid"),
            courseid=r.get_int("courseid"),
            timecreated=r.get_int("timecreated"),
            origin=r.opt_str("origin"),
        )


_ROW_VALUES = operator.itemgetter(*LOG_COLUMNS)
_NONE = type(None)
# The JSON types that a well-formed plugin row has in each column, in LOG_COLUMNS order: the
# same rules as LogRow.from_json, minus the numeric strings it tolerates (those rows take the
# slow path and are converted there).
_COLUMN_TYPES: tuple[frozenset[type], ...] = tuple(
    frozenset({str, _NONE})
    if c in {"objecttable", "origin"}
    else frozenset({int, _NONE})
    if c in {"objectid", "relateduserid"}
    else frozenset({str})
    if c in {"eventname", "component", "action", "target", "crud"}
    else frozenset({int})
    for c in LOG_COLUMNS
)
_NO_HASH = (None,)


def log_rows_from_json(items: Sequence[Any]) -> tuple[LogRow, ...]:
    """A page of the plugin's rows, checked column by column rather than field by field.

    The per-field checks of :meth:`LogRow.from_json` were 40% of a sync's time (17 us a row for
    17 fields). A well-formed page is checked here with a handful of C-level passes per column
    (``type`` of every value, as a set, within the column's allowed types; ``bool`` is not
    ``int`` for ``type``); anything else, a missing key, a non-object row, a numeric string, a
    wrong type, goes through ``from_json`` row by row, which converts what it tolerates and
    raises ``MalformedResponseError`` naming the first bad field.
    """
    try:
        values = list(map(_ROW_VALUES, items))
    except (KeyError, TypeError, IndexError):
        values = None
    if values is not None and all(
        set(map(type, column)) <= allowed
        for column, allowed in zip(zip(*values, strict=True), _COLUMN_TYPES, strict=False)
    ):
        new = tuple.__new__
        return tuple([new(LogRow, value + _NO_HASH) for value in values])
    return tuple(map(LogRow.from_json, items))


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of rows and where to resume after it.

    ``cursor`` is the last log id of the page (for ``ws``/``db``; store it with the rows in the
    same transaction). It is None for sources without ids (``csv``), whose rows de-duplicate on
    ``content_hash``. ``remaining`` is the number of rows left *including* this page when the
    source can tell (for a progress bar), else None.
    """

    rows: tuple[LogRow, ...]
    cursor: int | None
    hasmore: bool
    remaining: int | None = None


@runtime_checkable
class LogSource(Protocol):
    """Yields the events of one course after a cursor, page by page.

    ``after`` is the last log id already stored (0 for none); sources without ids ignore it and
    yield everything. A source must not yield a page before it knows the page is valid, so a
    caller that writes each page as it comes never writes half of a bad input.
    """

    name: str

    def pages(self, after: int = 0) -> Iterator[LogPage]: ...


class LogPageReader(Protocol):
    """What ``WsLogSource`` needs of a client: ``MoodleClient.get_course_logs``. A protocol, so
    that this module (which the client imports for ``LogPage``) never imports the client."""

    def get_course_logs(
        self, courseid: int, afterid: int = 0, limit: int = 1000, *, withcount: bool = False
    ) -> LogPage: ...


class WsLogSource:
    """The ``ws`` source: the companion plugin's ``local_archepredict_get_course_logs``."""

    name = "ws"

    def __init__(self, client: LogPageReader, courseid: int, page_size: int = 1000) -> None:
        if not 1 <= page_size <= 5000:
            raise ValueError("page_size must be between 1 and 5000 (the plugin's cap)")
        self.client = client
        self.courseid = courseid
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"WsLogSource(courseid={self.courseid}, page_size={self.page_size})"

    def pages(self, after: int = 0) -> Iterator[LogPage]:
        cursor = after
        first = True
        while True:
            page = self.client.get_course_logs(
                self.courseid, afterid=cursor, limit=self.page_size, withcount=first
            )
            first = False
            if page.cursor is not None and page.cursor < cursor:
                raise MalformedResponseError(
                    f"the log cursor went backwards ({cursor} -> {page.cursor})",
                    wsfunction="local_archepredict_get_course_logs",
                )
            yield page
            if not page.hasmore or not page.rows:
                return
            cursor = page.cursor if page.cursor is not None else cursor
