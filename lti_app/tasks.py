"""Units of work composed from services: one course's sync, and its scoring on the fresh data,
run alike by the CLI (`arche-predict sync`), the scheduler's nightly job and "Sync now".

Services never commit; this module owns the transactions. A sync commits the run record first
(so the dashboard sees it start), then each log page with its cursor, then the final status.
A Moodle error ends the run as `failed` with Moodle's errorcode and the admin-facing
explanation; the data already committed stays, and the next run resumes from the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from lti_app import log_sources
from lti_app.config import Settings
from lti_app.crypto import SecretBox
from lti_app.db import session_scope, utcnow
from lti_app.models import Course, MoodleSite, SyncRun
from lti_app.observability import get_logger
from lti_app.services import course_groups, coursework, sync, sync_requests
from lti_app.services.connections import SyncConfigError, moodle_client_for
from moodle_client.client import MoodleClient
from moodle_client.errors import MoodleError
from moodle_client.logs import LogSource

if TYPE_CHECKING:
    from lti_app.services.scoring import ScoringOutcome

log = get_logger(__name__)

Progress = Callable[[sync.PageProgress], None]
# What ends a sync as "failed" with a reason for the admin, rather than as a crash.
_EXPECTED = (MoodleError, SyncConfigError, log_sources.LogSourceError)


@dataclass(frozen=True)
class SyncOutcome:
    run_id: int
    status: str
    pages: int
    events_added: int
    error_code: str | None = None
    error_message: str | None = None


def run_course_sync(
    settings: Settings,
    factory: sessionmaker[Session],
    course_id: int,
    *,
    trigger: str = "manual",
    source: str | None = None,
    client: MoodleClient | None = None,
    progress: Progress | None = None,
    include_roster: bool = True,
    request_id: int | None = None,
) -> SyncOutcome:
    """Sync one course: details, roster, grades, then logs page by page.

    `client` may be given (tests, a shared pool); otherwise it is built from the site's
    encrypted token. `request_id` links the run to a dashboard "Sync now" request.
    """
    run_id, source_name = _start_run(settings, factory, course_id, trigger, source, request_id)
    error: Exception | None = None
    try:
        source_obj = _roster_and_source(
            settings, factory, course_id, source_name, client, include_roster
        )
        _pull_logs(factory, course_id, run_id, source_obj, progress)
    except _EXPECTED as exc:
        error = exc
        log.warning(
            "sync failed",
            course_id=course_id,
            error=str(exc),
            errorcode=getattr(exc, "errorcode", "configuration"),
        )
    except Exception as exc:  # recorded, then re-raised: the history must not say "running"
        error = exc
        log.exception("sync crashed", course_id=course_id)
    outcome = _finish_run(factory, run_id, error)
    if error is not None and not isinstance(error, _EXPECTED):
        raise error
    return outcome


def _start_run(
    settings: Settings,
    factory: sessionmaker[Session],
    course_id: int,
    trigger: str,
    source: str | None,
    request_id: int | None,
) -> tuple[int, str]:
    """Record the run first, committed, so the dashboard sees it start: (run id, source)."""
    with session_scope(factory) as session:
        course = session.get(Course, course_id)
        if course is None:
            raise SyncConfigError(f"no course with id {course_id}; see `arche-predict course list`")
        site = session.get_one(MoodleSite, course.site_id)
        source_name = source or site.log_source or settings.moodle.log_source
        sync.mark_stale_runs_failed(session, course.id, utcnow() - timedelta(hours=6))
        run = sync.start_run(session, course, trigger=trigger, source=source_name)
        if request_id is not None:  # "Sync now": the dashboard follows this run's pages
            sync_requests.attach_run(session, request_id, run.id)
        return run.id, source_name


def _roster_and_source(
    settings: Settings,
    factory: sessionmaker[Session],
    course_id: int,
    source_name: str,
    client: MoodleClient | None,
    include_roster: bool,
) -> LogSource:
    """Course details, roster and grades in one transaction; then the course's log source."""
    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        site = session.get_one(MoodleSite, course.site_id)
        if client is None and (include_roster or log_sources.spec(source_name).needs_client):
            client = moodle_client_for(settings, SecretBox.from_settings(settings), site)
        if include_roster and client is not None:
            mid = course.moodle_course_id
            sync.refresh_course(course, client.get_course(mid))
            users = [u for page in client.iter_enrolled_users(mid) for u in page]
            sync.sync_roster(session, course, users)
            sync.sync_grades(session, course, client.get_grade_items(mid))
            unread = sync.refresh_pass_mark(course, client)
            if unread is not None:
                log.info("pass mark not read from Moodle", course_id=course.id, reason=unread)
            coursework.sync_coursework(session, course, client)  # #16: work due, completion
            _sync_groups(session, client, site, course)  # #16: the dashboard's group filter
        return log_sources.build(source_name, log_sources.SourceContext(settings, course, client))


def _sync_groups(session: Session, client: MoodleClient, site: MoodleSite, course: Course) -> None:
    """The course's Moodle groups and members, for filtering the dashboard (#16). Optional: a
    refusal marks the feature unavailable (`course_groups.sync_groups`) and any other Moodle
    error is logged; neither fails the sync, and the groups stored before stay."""
    try:
        stored = course_groups.sync_groups(session, client, site, course)
    except MoodleError as exc:
        log.warning(
            "course groups not read", course_id=course.id, errorcode=exc.errorcode, error=str(exc)
        )
        return
    if stored is None:
        reason = (site.unavailable_features or {}).get("groups", "Moodle refused the call")
        log.info("course groups not read", course_id=course.id, reason=reason)


def _pull_logs(
    factory: sessionmaker[Session],
    course_id: int,
    run_id: int,
    source: LogSource,
    progress: Progress | None,
) -> None:
    """Each page committed with its cursor and the run's counters, so a crash loses nothing
    and the next run resumes after the last committed page."""
    with session_scope(factory) as session:  # its final commit and its rollback on error
        course = session.get_one(Course, course_id)
        run = session.get_one(SyncRun, run_id)
        for step in sync.iter_log_sync(session, course, source, run):
            session.commit()
            if progress is not None:
                progress(step)


def _finish_run(
    factory: sessionmaker[Session], run_id: int, error: Exception | None
) -> SyncOutcome:
    """The run's final status: succeeded, failed with Moodle's or the configuration's reason,
    or failed as internal (the details go to the log, not to the page)."""
    with session_scope(factory) as session:
        run = session.get_one(SyncRun, run_id)
        if error is None:
            sync.finish_run(run)
        elif isinstance(error, _EXPECTED):
            code = error.errorcode if isinstance(error, MoodleError) else "configuration"
            sync.finish_run(run, error_code=code, message=str(error))
        else:
            sync.finish_run(
                run,
                error_code="internal",
                message="an internal error stopped the sync; the logs have the details",
            )
        return SyncOutcome(
            run_id=run.id,
            status=run.status,
            pages=run.pages_done,
            events_added=run.events_added,
            error_code=run.error_code,
            error_message=run.error_message,
        )


#: What runs after each scoring of a synced course, registered by the process's entry point
#: (`after_scoring`): the scheduler, queue workers and `sync` build the course's dashboard for
#: the web workers there (`lti_app.app.page_prebuilder`, #19), which this layer cannot import.
_AFTER_SCORING: list[Callable[[int], None]] = []


@contextmanager
def after_scoring(hook: Callable[[int], None]) -> Iterator[None]:
    """While the block runs, `hook(course_id)` follows every scoring of a synced course in this
    process (a failure there is logged, never the scoring's). Scoped, so that a command run
    in-process (a test's CLI runner) leaves no hook behind for what runs next."""
    _AFTER_SCORING.append(hook)
    try:
        yield
    finally:
        _AFTER_SCORING.remove(hook)


def score_synced_course(
    settings: Settings, factory: sessionmaker[Session], course_id: int
) -> ScoringOutcome:
    """Score a course on the data a successful sync just brought (the nightly job, "Sync now"
    and `arche-predict sync` all call this, so they store the same predictions).

    Only after a successful sync: features such as "days since last activity" computed on
    stale logs would make active students look absent. The scoring is as of the course's newest
    event, so a sync with nothing new re-scores to the same predictions."""
    from lti_app.services import live_validation
    from lti_app.services.scoring import score_course  # ML stack: loaded when a course scores

    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        outcome = score_course(
            session, course, settings=settings.ml, model_root=settings.model_root
        )
        # After the term, with the final grades in: how right the shown estimates were (#17).
        # In its own savepoint: a failure there must not take the night's scoring with it.
        try:
            with session.begin_nested():
                live_validation.refresh(session, course, settings.ml, privacy=settings.privacy)
        except Exception:
            log.exception("live validation failed", course_id=course_id)
    for hook in _AFTER_SCORING:
        try:
            hook(course_id)
        except Exception:
            log.exception("after-scoring step failed", course_id=course_id)
    return outcome


def run_backfill(
    settings: Settings, factory: sessionmaker[Session], course_id: int, request_id: int
) -> list[SyncOutcome]:
    """Pull a course's newly linked past offerings, then the course (#17, item 1): the work of
    a `backfill` request, which the scheduler claimed. Returns each sync's outcome, the
    course's last; the caller scores the course when that one succeeded.

    Each past offering without a successful sync is synced in full (roster, final grades, every
    log page), oldest first; the request counts the steps done, so the dashboard's bar spans
    the whole backfill. A past offering whose sync fails does not stop the others: its failure
    is in the sync history and on the past-offerings page, and the next backfill retries it."""
    from lti_app.models import SyncRequest
    from lti_app.services.offering_links import active_past_ids, never_synced

    with session_scope(factory) as session:
        pending = never_synced(session, active_past_ids(session, course_id))
        req = session.get_one(SyncRequest, request_id)
        req.steps_total = len(pending) + 1
        req.steps_done = 0
    outcomes = []
    for past_id in pending:
        try:
            outcomes.append(
                run_course_sync(
                    settings, factory, past_id, trigger="backfill", request_id=request_id
                )
            )
        except Exception:  # recorded in the sync history (or not started): go on with the rest
            log.exception("backfill sync crashed", course_id=past_id)
        with session_scope(factory) as session:
            req = session.get_one(SyncRequest, request_id)
            req.steps_done += 1
            req.run_id = None  # the bar shows this step done until the next one starts
    outcomes.append(
        run_course_sync(settings, factory, course_id, trigger="backfill", request_id=request_id)
    )
    return outcomes
