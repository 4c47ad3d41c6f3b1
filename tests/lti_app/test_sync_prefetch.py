"""`prefetched`: the log sync fetches the next page while it stores the current one, without
changing what the plain loop would yield, raise, or leave open."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from lti_app.services.sync import prefetched
from moodle_client.errors import MoodleUnavailableError
from moodle_client.logs import LogPage


def _page(cursor: int) -> LogPage:
    return LogPage(rows=(), cursor=cursor, hasmore=True)


class Source:
    """Pages 1..n, recording how far it was pulled and whether it was closed."""

    def __init__(self, n: int, fail_after: int | None = None) -> None:
        self.n = n
        self.fail_after = fail_after
        self.pulled = 0
        self.closed = threading.Event()
        self.threads: set[str] = set()

    def pages(self) -> Iterator[LogPage]:
        try:
            for i in range(1, self.n + 1):
                self.threads.add(threading.current_thread().name)
                if self.fail_after is not None and i > self.fail_after:
                    raise MoodleUnavailableError("HTTP 503 from moodle", errorcode="http503")
                self.pulled = i
                yield _page(i)
        finally:
            self.closed.set()


def test_yields_every_page_in_order_from_another_thread() -> None:
    source = Source(7)
    assert [p.cursor for p in prefetched(source.pages())] == list(range(1, 8))
    assert source.closed.wait(5)
    assert threading.current_thread().name not in source.threads


def test_an_empty_source_yields_nothing() -> None:
    assert list(prefetched(iter(()))) == []


def test_a_source_error_comes_after_the_pages_before_it() -> None:
    source = Source(5, fail_after=3)
    seen: list[int | None] = []

    def consume() -> None:
        for page in prefetched(source.pages()):
            seen.append(page.cursor)

    with pytest.raises(MoodleUnavailableError, match="503"):
        consume()
    assert seen == [1, 2, 3]
    assert source.closed.wait(5)


def test_a_consumer_that_stops_stops_the_source_one_page_ahead_at_most() -> None:
    source = Source(1000)
    pages = prefetched(source.pages(), poll_s=0.01)
    assert next(pages).cursor == 1
    time.sleep(0.2)  # the thread fetches ahead, up to what the hand-over holds
    assert source.pulled <= 3
    pages.close()
    assert source.closed.wait(5)
    assert source.pulled <= 3


def test_an_error_while_storing_stops_the_source() -> None:
    source = Source(1000)

    def store_all() -> None:
        for page in prefetched(source.pages(), poll_s=0.01):
            if page.cursor == 2:
                raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store_all()
    assert source.closed.wait(5)
    assert source.pulled <= 4
