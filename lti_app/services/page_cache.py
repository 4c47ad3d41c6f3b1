"""Built dashboard pages kept in memory, keyed by what their data depends on.

A 500-student course dashboard takes about a second of CPU to build (the latest predictions with
their features and explanations, the weekly activity aggregate, the chart specs, thousands of
numbers formatted for the reader's language) and its data only changes when the course is
scored again, its models change, a sync runs or the roster changes. Under load (teachers
reloading the page) building it on every view made the server queue for seconds. So the built,
session-independent part of a page is kept in a small LRU per worker process, under a key read
from the database by one cheap query per view: a change of any input makes a new key, so
nothing is ever served stale and nothing expires by time. Per-session parts (CSRF token, launch
tokens in links) are never part of an entry; the web layer adds them per request.

What a page reads is declared, not remembered: each cached page is a `CachedPage` naming its
`PageInput`s (the course's fields, the latest scoring, the active models, the last sync, the
roster), each input names the tables it stands for and the cheap values that change when they
do, and the page's key is derived from that declaration alone. A test runs every cached
page's builder and checks that it queries no table outside its declared inputs, so a chart that
starts reading something new fails until its page declares it, instead of serving stale pages.

No Flask here: the key is a plain query over a session, the cache a thread-safe container.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ScalarSelect, Select, func, select
from sqlalchemy.orm import Session

from lti_app.models import (
    Course,
    CourseLineage,
    Enrolment,
    Grade,
    GradeItem,
    LearnerChoice,
    LiveValidation,
    ModelVersion,
    MoodleSite,
    Prediction,
    SyncRun,
)
from lti_app.services.shown_scoring import of_active_models

V = TypeVar("V")


class PageCache(Generic[V]):
    """A bounded, thread-safe LRU of built pages.

    `size` bounds the number of entries (a 500-student dashboard entry is about half a
    megabyte, mostly its pre-rendered table and chart data), so the default holds a few MB per
    worker. One thread builds a missing key while the others asking for it wait for that build
    (a cold worker under load had its four threads build the same page at once, four times the
    CPU, and every request queued behind them for seconds); builds of other keys go on in
    parallel, and a failed build is retried by the next caller.
    """

    def __init__(self, size: int = 8) -> None:
        if size < 1:
            raise ValueError(f"a page cache needs room for at least one page, not {size}")
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def _cached(self, key: Hashable) -> tuple[bool, V | None]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return True, self._items[key]
            return False, None

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        found, value = self._cached(key)
        if found:
            return value  # type: ignore[return-value]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            # Built by the thread we waited for?
            found, value = self._cached(key)
            if found:
                return value  # type: ignore[return-value]
            with self._lock:
                self.misses += 1
            try:
                value = build()
                with self._lock:
                    self._items[key] = value
                    self._items.move_to_end(key)
                    while len(self._items) > self.size:
                        self._items.popitem(last=False)
            finally:
                with self._lock:
                    self._building.pop(key, None)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_Rows = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class PageInput:
    """One kind of data a cached page reads, and how to tell that it changed.

    ``tables``: the tables whose rows this input stands for, the only ones a page declaring it
    may query for it. ``values(course_id)``: scalar subqueries (each an indexed look-up) whose
    results change whenever those rows change in a way a page can show. ``rows(course_id)``,
    for what a few rows say better than scalars: a query whose every row is part of the key.
    """

    name: str
    tables: frozenset[str]
    values: Callable[[int], Sequence[ScalarSelect[Any]]]
    rows: Callable[[int], _Rows] | None = None


@dataclass(frozen=True)
class CachedPage:
    """A page (or a part shared by pages) kept in a `PageCache`, with what it reads.

    `key` is derived from `inputs` only: the page's name, the course, and every declared
    input's values (one round trip for the scalars, one per input with rows). Two pages never
    share an entry, and a page's key moves exactly when one of its inputs does.
    """

    name: str
    inputs: tuple[PageInput, ...]

    @property
    def tables(self) -> frozenset[str]:
        """Every table the page's builder may read."""
        return frozenset().union(*(i.tables for i in self.inputs))

    def key(self, session: Session, course: Course) -> tuple[Any, ...]:
        scalars = [v for i in self.inputs for v in i.values(course.id)]
        values = tuple(session.execute(select(*scalars)).one()) if scalars else ()
        rows = tuple(
            tuple(tuple(r) for r in session.execute(i.rows(course.id)).all())
            for i in self.inputs
            if i.rows is not None
        )
        return (self.name, course.id, values, rows)


def _course_fields(course_id: int) -> list[ScalarSelect[Any]]:
    # Every field of its own a page shows; a look-up by primary key each.
    return [
        select(column).where(Course.id == course_id).scalar_subquery()
        for column in (
            Course.shortname,
            Course.fullname,
            Course.start_at,
            Course.end_at,
            Course.pass_mark,
            Course.moodle_gradepass,
            Course.moodle_grademax,
            Course.risk_threshold,
            Course.learner_view_enabled,
        )
    ]


def _latest_scoring(course_id: int) -> list[ScalarSelect[Any]]:
    # The scoring the pages show (the active models' latest, `shown_scoring`): its date, its
    # size and its highest row id say which one it is (a scoring as of a date already scored
    # replaces those rows, with new ids).
    shown = of_active_models(course_id)
    latest = select(func.max(Prediction.as_of)).where(*shown).scalar_subquery()
    at_latest = (*shown, Prediction.as_of == latest)
    return [
        latest,
        select(func.count()).where(*at_latest).scalar_subquery(),
        select(func.max(Prediction.id)).where(*at_latest).scalar_subquery(),
    ]


def _active_models(course_id: int) -> _Rows:
    # The gate decides what may be shown, so it is part of the key with the versions.
    return (
        select(
            ModelVersion.id,
            ModelVersion.task,
            ModelVersion.gate_passed,
            ModelVersion.gate_reason,
        )
        .where(ModelVersion.course_id == course_id, ModelVersion.active)
        .order_by(ModelVersion.id)
    )


def _last_sync(course_id: int) -> list[ScalarSelect[Any]]:
    def last_run_value(column: Any) -> ScalarSelect[Any]:
        return (
            select(column)
            .where(SyncRun.course_id == course_id)
            .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    return [
        last_run_value(SyncRun.id),
        last_run_value(SyncRun.status),
        last_run_value(SyncRun.finished_at),
        last_run_value(SyncRun.error_code),
    ]


def _roster(course_id: int) -> list[ScalarSelect[Any]]:
    # Who the students are: the enrolments, and whose data may be used (#18: the learners'
    # choices and the site's consent mode).
    in_course = Enrolment.course_id == course_id
    chose = LearnerChoice.course_id == course_id
    site = select(Course.site_id).where(Course.id == course_id).scalar_subquery()
    return [
        select(func.count()).where(in_course).scalar_subquery(),
        select(func.max(Enrolment.updated_at)).where(in_course).scalar_subquery(),
        select(func.count()).select_from(LearnerChoice).where(chose).scalar_subquery(),
        select(func.max(LearnerChoice.at)).where(chose).scalar_subquery(),
        select(MoodleSite.consent_mode).where(MoodleSite.id == site).scalar_subquery(),
    ]


def _past_terms(course_id: int) -> _Rows:
    # The term the page states (`courses.shown_term`) takes a course without an end date to
    # last as long as its graded past offerings: their dates and how many graded totals each
    # has (their events come with a sync, which SYNC stands for).
    graded = (
        select(func.count())
        .select_from(Grade)
        .join(GradeItem, GradeItem.id == Grade.grade_item_id)
        .where(GradeItem.course_id == CourseLineage.past_course_id, GradeItem.itemtype == "course")
        .where(Grade.value.is_not(None))
        .correlate(CourseLineage)
        .scalar_subquery()
    )
    return (
        select(CourseLineage.past_course_id, Course.start_at, Course.end_at, graded)
        .join(Course, Course.id == CourseLineage.past_course_id)
        .where(CourseLineage.course_id == course_id, CourseLineage.status == "active")
        .order_by(CourseLineage.past_course_id)
    )


#: The course's own fields (names, dates, pass mark, learner-view switch).
COURSE = PageInput("course", frozenset({"course"}), _course_fields)
#: The latest scoring's predictions, with their features and explanations.
SCORING = PageInput("scoring", frozenset({"prediction"}), _latest_scoring)
#: The active model versions and their quality gate.
MODELS = PageInput("models", frozenset({"model_version"}), lambda _: [], _active_models)
#: The latest sync run and its state (the page shows it, and a failure's fix). A sync is what
#: brings new events and refreshed names, so the run also stands for the log and the people (a
#: log imported from a file records no run: the scoring after it moves the keys).
SYNC = PageInput("sync", frozenset({"sync_run", "log_event", "person"}), _last_sync)
#: The course's enrolments: who the students are (the weekly charts count the roster's).
ROSTER = PageInput(
    "roster", frozenset({"enrolment", "person", "learner_choice", "moodle_site"}), _roster
)
#: How right the shown estimates of a finished term turned out (#17, the model card).
LIVE = PageInput(
    "live",
    frozenset({"live_validation"}),
    lambda course_id: [
        select(LiveValidation.computed_at)
        .where(LiveValidation.course_id == course_id)
        .scalar_subquery()
    ],
)
#: The past offerings that date a course without an end date (the dashboard's term sentence).
TERM = PageInput(
    "term",
    frozenset({"course_lineage", "course", "grade", "grade_item"}),
    lambda _: [],
    _past_terms,
)
