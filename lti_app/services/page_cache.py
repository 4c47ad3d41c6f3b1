"""Built dashboard pages kept in memory, keyed by what their data depends on.

A 500-student course dashboard takes about a second of CPU to build (the latest predictions with
their features and explanations, the weekly activity aggregate, the chart specs, thousands of
numbers formatted for the reader's language) and its data only changes when the course is
scored again, its models change, a sync runs or the roster changes. Under load (teachers
reloading the page) building it on every view made the server queue for seconds. So the built,
session-independent part of a page is kept in a small LRU per worker process, under a key read
from the database by one cheap query per view (`course_page_key`): a change of any input makes a
new key, so nothing is ever served stale and nothing expires by time. Per-session parts (CSRF
token, launch tokens in links) are never part of an entry; the web layer adds them per request.

No Flask here: the key is a plain query over a session, the cache a thread-safe container.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.models import Course, Enrolment, ModelVersion, Prediction, SyncRun

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


def course_page_key(session: Session, course: Course) -> tuple[Any, ...]:
    """Everything a course dashboard's data depends on, read cheaply (indexed aggregates and a
    few small rows; about a millisecond on PostgreSQL):

    - the latest scoring: its `as_of`, how many predictions and the highest prediction id (a
      scoring writes its rows once, in one transaction, under a new `as_of`);
    - the active model versions with their gate (the gate decides what may be shown);
    - the latest sync run and its state (the page shows it and a failure's fix), which also
      covers the events the weekly chart counts and the names a sync refreshes;
    - the roster's size and last change (the weekly chart counts the roster's students);
    - the course's own fields the page shows.
    """
    latest = (
        select(func.max(Prediction.as_of))
        .where(Prediction.course_id == course.id)
        .scalar_subquery()
    )
    at_latest = (Prediction.course_id == course.id, Prediction.as_of == latest)
    last_run = (SyncRun.course_id == course.id,)
    last_first = (SyncRun.started_at.desc(), SyncRun.id.desc())

    def last_run_value(column: Any) -> Any:
        return select(column).where(*last_run).order_by(*last_first).limit(1).scalar_subquery()

    in_course = Enrolment.course_id == course.id
    # One round trip for the scalars (each an indexed look-up), one for the model rows.
    scalars = session.execute(
        select(
            latest,
            select(func.count()).where(*at_latest).scalar_subquery(),
            select(func.max(Prediction.id)).where(*at_latest).scalar_subquery(),
            last_run_value(SyncRun.id),
            last_run_value(SyncRun.status),
            last_run_value(SyncRun.finished_at),
            last_run_value(SyncRun.error_code),
            select(func.count()).where(in_course).scalar_subquery(),
            select(func.max(Enrolment.updated_at)).where(in_course).scalar_subquery(),
        )
    ).one()
    models = session.execute(
        select(
            ModelVersion.id,
            ModelVersion.task,
            ModelVersion.gate_passed,
            ModelVersion.gate_reason,
        )
        .where(ModelVersion.course_id == course.id, ModelVersion.active)
        .order_by(ModelVersion.id)
    ).all()
    return (
        course.id,
        tuple(scalars),
        tuple(tuple(m) for m in models),
        (
            course.shortname,
            course.fullname,
            course.start_at,
            course.end_at,
            course.pass_mark,
            course.learner_view_enabled,
        ),
    )
