"""``store_log_rows`` on both backends: every new row stored once, in page order, whatever path
it takes (PostgreSQL's straight COPY, or its staged ON CONFLICT fallback when some rows are
already there; SQLite's prepared INSERT)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from lti_app.models import MoodleSite
from lti_app.services.sync import store_log_rows
from moodle_client.logs import LogRow


def _row(log_id: int | None, *, user: int = 5, content_hash: str | None = None) -> LogRow:
    return LogRow(
        id=log_id,
        eventname="\\core\\event\\course_viewed",
        component="core",
        action="viewed",
        target="course",
        objecttable=None,
        objectid=None,
        crud="r",
        edulevel=2,
        contextid=None if log_id is None else 31,
        contextlevel=50,
        contextinstanceid=2,
        userid=user,
        relateduserid=None,
        courseid=2,
        timecreated=1_788_800_000 + (log_id or user),
        origin="web\tcli\\x",  # a tab and a backslash: COPY's text format must escape them
        content_hash=content_hash,
    )


@pytest.fixture
def site_id(db_session: Session) -> int:
    site = MoodleSite(base_url="https://moodle.example")
    db_session.add(site)
    db_session.flush()
    return site.id


def _stored(session: Session) -> list[tuple[object, ...]]:
    """(moodle_log_id, content_hash, userid, origin) in insertion order."""
    return [
        tuple(r)
        for r in session.execute(
            text("SELECT moodle_log_id, content_hash, userid, origin FROM log_event ORDER BY id")
        )
    ]


def test_new_rows_are_stored_in_page_order(db_session: Session, site_id: int) -> None:
    page = [_row(i) for i in (7, 3, 9, 4)]
    assert store_log_rows(db_session, site_id, "ws", page) == 4
    assert _stored(db_session) == [(i, None, 5, "web\tcli\\x") for i in (7, 3, 9, 4)]
    assert store_log_rows(db_session, site_id, "ws", []) == 0


def test_rows_already_stored_are_skipped_and_the_rest_kept_in_order(
    db_session: Session, site_id: int
) -> None:
    assert store_log_rows(db_session, site_id, "ws", [_row(i) for i in range(1, 6)]) == 5
    # A page overlapping what is stored (a second process, a source started over), twice.
    overlap = [_row(i) for i in (4, 8, 5, 6, 9)]
    assert store_log_rows(db_session, site_id, "ws", overlap) == 3
    assert store_log_rows(db_session, site_id, "ws", overlap) == 0
    # The fast path works again afterwards in the same transaction.
    assert store_log_rows(db_session, site_id, "ws", [_row(20), _row(21)]) == 2
    ids = [r[0] for r in _stored(db_session)]
    assert ids == [1, 2, 3, 4, 5, 8, 6, 9, 20, 21]


def test_a_row_repeated_within_one_page_is_stored_once(db_session: Session, site_id: int) -> None:
    page = [_row(1), _row(2), _row(1, user=99), _row(3)]
    assert store_log_rows(db_session, site_id, "ws", page) == 3
    assert [(r[0], r[2]) for r in _stored(db_session)] == [(1, 5), (2, 5), (3, 5)]


def test_csv_rows_deduplicate_on_their_content_hash(db_session: Session, site_id: int) -> None:
    first = [_row(None, user=u, content_hash=f"{u:064x}") for u in (1, 2, 3)]
    assert store_log_rows(db_session, site_id, "csv", first) == 3
    again = [_row(None, user=u, content_hash=f"{u:064x}") for u in (2, 3, 4)]
    assert store_log_rows(db_session, site_id, "csv", again) == 1
    assert [(r[0], r[1], r[2]) for r in _stored(db_session)] == [
        (None, f"{u:064x}", u) for u in (1, 2, 3, 4)
    ]
    # Web-service rows (no hash) and CSV rows (no id) never collide with each other.
    assert store_log_rows(db_session, site_id, "ws", [_row(1), _row(2)]) == 2


def test_the_same_ids_on_another_site_are_other_events(db_session: Session, site_id: int) -> None:
    other = MoodleSite(base_url="https://other.example")
    db_session.add(other)
    db_session.flush()
    assert store_log_rows(db_session, site_id, "ws", [_row(1), _row(2)]) == 2
    assert store_log_rows(db_session, other.id, "ws", [_row(2), _row(1)]) == 2
    assert len(_stored(db_session)) == 4


def test_a_row_breaking_another_rule_is_not_swallowed(db_session: Session, site_id: int) -> None:
    bad = _row(1)._replace(crud="x")
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        store_log_rows(db_session, site_id, "ws", [_row(2), bad])


def test_deleting_a_site_deletes_its_events(db_session: Session, site_id: int) -> None:
    """log_event has no foreign key to its site (a per-row lookup on every insert); the
    migration's trigger keeps the old ON DELETE CASCADE."""
    other = MoodleSite(base_url="https://other.example")
    db_session.add(other)
    db_session.flush()
    store_log_rows(db_session, site_id, "ws", [_row(1), _row(2)])
    store_log_rows(db_session, site_id, "csv", [_row(None, content_hash="a" * 64)])
    store_log_rows(db_session, other.id, "ws", [_row(1)])
    db_session.execute(text("DELETE FROM moodle_site WHERE id = :id"), {"id": site_id})
    left = db_session.execute(text("SELECT site_id, moodle_log_id FROM log_event")).all()
    assert [tuple(r) for r in left] == [(other.id, 1)]


def test_postgresql_inserts_rows_while_the_next_are_still_being_read(
    db_session: Session, site_id: int
) -> None:
    """A lazy iterable (a CSV import's `LogScan.rows`) is streamed: the server has inserted
    rows of the COPY while the iterable has not given its last one yet (PostgreSQL's own
    progress view, read from a second connection, says so)."""
    from lti_app.job_queue import conninfo

    bind = db_session.get_bind()
    if bind.dialect.name != "postgresql":
        pytest.skip("SQLite works in this process: the rows are read before they are stored")
    pid = db_session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    url = db_session.connection().engine.url.render_as_string(hide_password=False)
    progress: list[int] = []

    def rows() -> Iterator[LogRow]:
        for i in range(1, 8001):
            if i == 6000:
                with psycopg.connect(conninfo(url), autocommit=True) as watcher:
                    for _ in range(200):  # the server catches up within moments
                        done = watcher.execute(
                            "SELECT tuples_processed FROM pg_stat_progress_copy WHERE pid = %s",
                            (pid,),
                        ).fetchone()
                        if done and done[0]:
                            progress.append(int(done[0]))
                            break
                        time.sleep(0.05)
            yield _row(i)

    assert store_log_rows(db_session, site_id, "ws", rows()) == 8000
    assert progress, "the COPY's progress never showed a stored row before the last was read"
    assert 0 < progress[0] < 6000
    assert [r[0] for r in _stored(db_session)] == list(range(1, 8001))


class _EndingCopy:
    """A COPY whose end raises `error` (a Ctrl-C while the server finishes it)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __enter__(self) -> _EndingCopy:
        return self

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if value is None:
            raise self.error

    def set_types(self, types: object) -> None:
        pass

    def write_row(self, row: object) -> None:
        pass


class _Cursor:
    def __init__(self, error: BaseException) -> None:
        self.error, self.sql = error, list[str]()

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.sql.append(sql)

    def copy(self, sql: str) -> _EndingCopy:
        return _EndingCopy(self.error)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit(3)], ids=repr)
def test_an_interrupt_while_a_refused_copy_ends_is_not_hidden(interrupt: BaseException) -> None:
    """A file refused halfway ends its COPY normally, to roll it back; a Ctrl-C arriving
    meanwhile stays a Ctrl-C (the refusal must not replace it), and the savepoint is undone."""
    from types import SimpleNamespace

    from lti_app.services.sync import _copy_log_rows

    cur = _Cursor(interrupt)
    driver = SimpleNamespace(cursor=lambda: cur)
    session = SimpleNamespace(
        connection=lambda: SimpleNamespace(connection=SimpleNamespace(driver_connection=driver))
    )

    def refused_halfway() -> Iterator[tuple[int]]:
        yield (1,)
        raise ValueError("line 3 belongs to course 3")

    with pytest.raises(type(interrupt)):
        _copy_log_rows(session, refused_halfway())  # type: ignore[arg-type]
    undo = ["ROLLBACK TO SAVEPOINT arche_log_copy", "RELEASE SAVEPOINT arche_log_copy"]
    assert cur.sql[-2:] == undo
