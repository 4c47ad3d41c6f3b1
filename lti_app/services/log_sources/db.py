"""The `db` log source: read-only SQL on a table with Moodle's standard-log schema.

Two deployments need no Moodle plugin at all:
- a read replica of Moodle's own `mdl_logstore_standard_log`;
- the table that Moodle's core "External database log" store (`logstore_database`) writes
  into, on a database the tool may read.
It lives in `lti_app` rather than `moodle_client` because it needs SQLAlchemy, and yields the
same `LogPage`s as the web-service source, so the sync treats them alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy import BigInteger, String, column, func, select, table
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from lti_app.db import make_engine
from lti_app.log_sources import LogSourceError, LogSourceSpec, SourceContext
from moodle_client.errors import MoodleUnavailableError
from moodle_client.logs import LOG_COLUMNS, LogPage, LogRow, LogSource

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_INT_COLUMNS = {
    "id",
    "objectid",
    "edulevel",
    "contextid",
    "contextlevel",
    "contextinstanceid",
    "userid",
    "relateduserid",
    "courseid",
    "timecreated",
}


class DbLogSource:
    """Pages of one course's standard-log rows after a log id, straight from SQL."""

    name = "db"

    def __init__(
        self, engine: Engine, table_name: str, courseid: int, page_size: int = 5000
    ) -> None:
        if not _TABLE_NAME.match(table_name):
            raise ValueError(f"'{table_name}' is not a plain [schema.]table name")
        if not 1 <= page_size <= 50000:
            raise ValueError("page_size must be between 1 and 50000")
        schema, _, name = table_name.rpartition(".")
        self.engine = engine
        self.courseid = courseid
        self.page_size = page_size
        self.table = table(
            name,
            *(column(c, BigInteger() if c in _INT_COLUMNS else String()) for c in LOG_COLUMNS),
            schema=schema or None,
        )

    def __repr__(self) -> str:
        return f"DbLogSource(table={self.table.fullname!r}, courseid={self.courseid})"

    def pages(self, after: int = 0) -> Iterator[LogPage]:
        cols = self.table.c
        cursor = after
        first = True
        while True:
            try:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(postgresql_readonly=True)
                    remaining = None
                    if first:
                        remaining = conn.scalar(
                            select(func.count())
                            .select_from(self.table)
                            .where(cols.courseid == self.courseid, cols.id > cursor)
                        )
                    result = conn.execute(
                        select(*(cols[c] for c in LOG_COLUMNS))
                        .where(cols.courseid == self.courseid, cols.id > cursor)
                        .order_by(cols.id)
                        .limit(self.page_size + 1)
                    )
                    records = result.mappings().all()
            except SQLAlchemyError as exc:
                raise MoodleUnavailableError(
                    f"the log database cannot be read ({exc.__class__.__name__})",
                    errorcode="logdbunavailable",
                    explanation=(
                        "check moodle.db_log_url and moodle.db_log_table, and that the tool's "
                        "database user may SELECT from that table"
                    ),
                ) from None
            first = False
            hasmore = len(records) > self.page_size
            rows = tuple(_row(r) for r in records[: self.page_size])
            if rows:
                cursor = int(rows[-1].id or cursor)
            yield LogPage(
                rows=rows,
                cursor=cursor,
                hasmore=hasmore,
                remaining=int(remaining) if remaining is not None else None,
            )
            if not hasmore:
                return


def _row(m: RowMapping) -> LogRow:

    def opt_int(name: str) -> int | None:
        v = m.get(name)
        return None if v is None else int(v)

    return LogRow(
        id=int(m["id"]),
        eventname=str(m["eventname"]),
        component=str(m["component"]),
        action=str(m["action"]),
        target=str(m["target"]),
        objecttable=m.get("objecttable"),
        objectid=opt_int("objectid"),
        crud=str(m["crud"]),
        edulevel=int(m["edulevel"]),
        contextid=opt_int("contextid"),
        contextlevel=int(m["contextlevel"]),
        contextinstanceid=int(m["contextinstanceid"]),
        userid=int(m["userid"]),
        relateduserid=opt_int("relateduserid"),
        courseid=int(m["courseid"]),
        timecreated=int(m["timecreated"]),
        origin=m.get("origin"),
    )


def _build(context: SourceContext) -> LogSource:
    url = context.settings.moodle.db_log_url
    if not url:
        raise LogSourceError(
            "the db log source needs moodle.db_log_url (a read-only URL to the log table)"
        )
    return DbLogSource(
        make_engine(url),
        context.settings.moodle.db_log_table,
        context.course.moodle_course_id,
        page_size=context.settings.moodle.page_size,
    )


SOURCE = LogSourceSpec(
    name="db",
    description="read-only SQL on a table with Moodle's standard-log schema",
    build=_build,
)
