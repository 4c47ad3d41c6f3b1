"""Database plumbing: the declarative base, engines, sessions and the Alembic bridge.

The session lifecycle lives outside the code that uses it: the web layer opens one session per
request and commits at the end, the CLI and the scheduler do the same around a job, and tests
roll back. Services receive a `Session` and never commit, so one unit of work stays atomic.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# SQLite keeps its write-ahead log and shared-memory index beside the database file; both hold
# the same personal data as the database.
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")

# Stable constraint names make Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT for big tables.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def deleted_rows(result: object) -> int:
    """How many rows a DELETE or UPDATE touched (its `rowcount`; 0 when the driver says
    nothing): what purges and erasures report."""
    return int(getattr(result, "rowcount", 0) or 0)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend stores.

    SQLite has no time zones; without this, values read back would be naive and comparisons with
    aware datetimes would fail at run time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) so that only the tool's user can enter it (0700).

    The instance folder holds the SQLite database, model artifacts and metric files: personal
    data about learners. `mkdir(mode=0o700)` is safe whatever the umask (a umask only removes
    bits). A folder that already exists with group or other access is tightened, with a log
    line, since an older version (or a hand-made folder) may have left it open.
    """
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)  # also when another process created it between the check and mkdir
        return path
    _tighten(path, 0o700)
    return path


def private_file(path: Path, *, create: bool = True) -> None:
    """Make `path` readable by the tool's user only (0600): create it so (umask-safe, with
    `os.open`'s mode), or tighten an existing group- or world-readable file with a log line."""
    if not path.exists():
        if create:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            except OSError:
                return  # SQLite will say "unable to open database file", the CLI's clear line
            os.close(fd)
            _tighten(path, 0o600)  # another process may have created it first
        return
    _tighten(path, 0o600)


def _tighten(path: Path, wanted: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    # Imported here, on the rare path that logs: structlog costs a short command's start.
    from lti_app.observability import get_logger

    log = get_logger(__name__)
    try:
        path.chmod(wanted)
    except OSError as exc:  # not ours: say so, the operator must fix it
        log.error("cannot tighten permissions", path=str(path), mode=oct(mode), error=exc.strerror)
        return
    log.warning("tightened permissions", path=str(path), was=oct(mode), now=oct(wanted))


def private_instance(instance_dir: Path, model_root: Path) -> None:
    """The instance folder 0700, and the model folder (`Settings.model_root`) when it exists
    (an older version created both 0755). Called at start-up by the app factory and by the
    CLI's long-running commands. Whatever is inside (the metric files `serve` recreates at each
    start) is then out of other users' reach through the folder."""
    private_dir(instance_dir)
    if model_root.is_dir():
        private_dir(model_root)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, or None (in-memory, or not SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _private_sqlite(path: Path) -> None:
    """The SQLite file and its WAL/SHM beside it: 0600, in a folder that only we can enter.

    The file is created empty before SQLite opens it (an empty file is a valid empty database):
    SQLite would otherwise create it 0644 under the usual umask. SQLite creates the -wal and
    -shm files with the database file's own permissions, so those follow; existing ones (from
    an older version) are tightened here.
    """
    parent = path.parent
    if not parent.exists():
        private_dir(parent)
    private_file(path)
    for suffix in SQLITE_SIDECARS:
        private_file(path.with_name(path.name + suffix), create=False)


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    """Create an engine with the per-backend settings the tool relies on.

    SQLite gets foreign keys, WAL (readers do not block the nightly writer) and a busy timeout;
    its file is created private (0600, in a 0700 folder when the folder is new) so that the
    embedded default works on a fresh checkout without exposing learners' data to other users
    of the machine. A folder that already exists (the instance folder is tightened by
    `private_dir` at start-up; another one may be shared on purpose) is left as it is.
    """
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            _private_sqlite(path)
        engine = create_engine(url, echo=echo)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work for the CLI and the scheduler: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
