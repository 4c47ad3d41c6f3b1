"""Canonical log rows and the log-source interface.

Stock Moodle has no web-service function returning log entries, so logs come from one of three
sources behind one interface (DESIGN.md, "Logs via web services"): ``ws`` (the companion plugin,
here), ``db`` (read-only SQL on a standard-log table, in lti_app because it needs SQLAlchemy) and
``csv`` (Moodle's log-report download, ``moodle_client.csv_logs``). Each yields pages of
``LogRow`` plus a cursor, so the sync can store a page and its cursor in one transaction and
resume after a crash from the last stored cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from moodle_client.errors import MalformedResponseError
from moodle_client.types import _Reader

if TYPE_CHECKING:
    from moodle_client.client import MoodleClient

__all__ = ["LOG_COLUMNS", "LogPage", "LogRow", "LogSource", "WsLogSource"]

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


@dataclass(frozen=True, slots=True)
class LogRow:
    """One standard-log event, whatever source it came from.

    The fields are exactly ``LOG_COLUMNS`` (``timecreated`` in epoch seconds) plus
    ``content_hash``. ``ws`` and ``db`` rows carry Moodle's ``id`` and no hash. ``csv`` rows come
    from a download that has no log id and no context id, so ``id`` and ``contextid`` are None
    and ``content_hash`` (a SHA-256 hex digest) is their identity for de-duplication.
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
        """A row of the plugin's answer (every column, ints as ints, nullable ones may be null)."""
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


class WsLogSource:
    """The ``ws`` source: the companion plugin's ``local_archepredict_get_course_logs``."""

    name = "ws"

    def __init__(self, client: MoodleClient, courseid: int, page_size: int = 1000) -> None:
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
