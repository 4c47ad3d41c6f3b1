"""What every command shares: the process's context, the error translation, small look-ups.

Nothing heavy is imported here at module level: `arche-predict --help` and the light commands
load only click and this package. The configuration, SQLAlchemy, Alembic and the log-source
registry are imported when a command first needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from lti_app.config import Settings
    from lti_app.models import Course

F = TypeVar("F", bound=Callable[..., Any])


class CliContext:
    """One CLI process's settings, engine and session factory, each made on first use.

    Settings load once (from `--config` or $ARCHE_PREDICT_CONFIG). The engine is created the
    first time a command asks for it, so that commands without a database (`config check`,
    `lti tool-config`, `serve`) never open one and so that a command may prepare the instance
    folder before SQLite creates its file there. There is one engine per process, whatever the
    number of units of work; `main` registers `close` with click, which disposes it when the
    root command ends, on success, error or `sys.exit` alike.
    """

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self._session_factory: sessionmaker[Session] | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from lti_app.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from lti_app.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    @property
    def session_factory(self) -> sessionmaker[Session]:
        if self._session_factory is None:
            from lti_app.db import make_session_factory

            self._session_factory = make_session_factory(self.engine)
        return self._session_factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work on the process's engine: committed on success, rolled back on error."""
        from lti_app.db import session_scope

        with session_scope(self.session_factory) as session:
            yield session

    def close(self) -> None:
        """Dispose of the engine, if a command made one (its pooled connections close)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._session_factory = None


pass_ctx = click.make_pass_decorator(CliContext)


def friendly_errors(fn: F) -> F:
    """Turn the errors an operator can fix into one clear line and a non-zero exit.

    Any other exception is a bug and keeps its traceback.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            message = _operator_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from None

    return wrapper  # type: ignore[return-value]


def _operator_message(exc: Exception) -> str | None:
    """The line for a configuration, secret or database error; None for anything else.

    The error classes are imported here, once a command has failed, so that no command pays
    for SQLAlchemy or the configuration's validation merely to be able to catch their errors.
    """
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from lti_app.config import ConfigError
    from lti_app.crypto import SecretError
    from lti_app.observability import redact

    if isinstance(exc, ConfigError):
        return f"configuration: {exc}"
    if isinstance(exc, SecretError):
        return str(exc)
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database unreachable: {redact(reason)}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {exc.__class__.__name__}"
    return None


class LogSourceChoice(click.Choice[str]):
    """`--source`'s choices: the names in the log-source registry (`lti_app.log_sources`).

    The registry is read when the option is shown or parsed, not when the CLI is imported: the
    registry imports the Moodle client (and `requests`), which `arche-predict --help` and the
    commands without `--source` do not need.
    """

    def __init__(self) -> None:
        # click.Choice.__init__ would freeze the names into a tuple now; `choices` is read late.
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]  # read-only on purpose
        from lti_app import log_sources

        return log_sources.names()


def course_or_fail(session: Session, course_id: int) -> Course:
    """The course with our id COURSE_ID, or the error that tells the operator where to look."""
    from lti_app.models import Course

    course = session.get(Course, course_id)
    if course is None:
        raise click.ClickException(
            f"no course with id {course_id}; see `arche-predict course list`"
        )
    return course


class CourseRef(click.ParamType[int, Any]):
    """`--course`/`--past`: the tool's course id, the Moodle course id or the short name
    (`lti_app.services.course_refs`), resolved to the tool's id when the option is parsed.

    A bare number that is the tool id of one course and the Moodle id of another is refused
    with a line that says to write `id:N` or `moodle:N`.
    """

    name = "course"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from lti_app.services.course_refs import CourseRefError, resolve_course

        cli = ctx.find_object(CliContext) if ctx is not None else None
        if cli is None:  # pragma: no cover - every command runs under `main`
            self.fail("no configuration to look the course up in", param, ctx)
        try:
            with cli.session() as session:
                return resolve_course(session, value).id
        except CourseRefError as exc:
            self.fail(str(exc), param, ctx)


COURSE = CourseRef()
COURSE_HELP = "Course: its id (course list), Moodle course id or short name."
