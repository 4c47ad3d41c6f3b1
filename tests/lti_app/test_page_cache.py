"""The dashboards' page cache: bounded, least recently used out first, one build per key."""

from __future__ import annotations

import threading

import pytest

from lti_app.services.page_cache import PageCache


def test_builds_once_per_key_and_evicts_the_least_recently_used() -> None:
    cache: PageCache[str] = PageCache(size=2)
    built: list[str] = []

    def build(key: str) -> str:
        built.append(key)
        return f"page {key}"

    assert cache.get_or_build("a", lambda: build("a")) == "page a"
    assert cache.get_or_build("a", lambda: build("a")) == "page a"
    assert built == ["a"]
    cache.get_or_build("b", lambda: build("b"))
    cache.get_or_build("a", lambda: build("a"))  # a is now the most recent
    cache.get_or_build("c", lambda: build("c"))  # evicts b
    assert len(cache) == 2
    assert cache.get_or_build("a", lambda: build("a")) == "page a"
    cache.get_or_build("b", lambda: build("b"))
    assert built == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses) == (3, 4)


def test_a_failed_build_stores_nothing() -> None:
    cache: PageCache[str] = PageCache(size=2)

    def fail() -> str:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        cache.get_or_build("a", fail)
    assert len(cache) == 0
    assert cache.get_or_build("a", lambda: "page a") == "page a"


def test_size_must_hold_a_page() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        PageCache(size=0)


def test_concurrent_views_stay_within_the_bound() -> None:
    cache: PageCache[int] = PageCache(size=3)
    errors: list[BaseException] = []

    def view(worker: int) -> None:
        try:
            for i in range(200):
                key = (worker + i) % 7
                assert cache.get_or_build(key, lambda k=key: k * 10) == key * 10  # type: ignore[misc]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=view, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 3


def test_threads_missing_the_same_key_wait_for_one_build() -> None:
    """A cold worker's threads asking for the same page build it once, not once each."""
    cache: PageCache[str] = PageCache(size=2)
    started, release = threading.Event(), threading.Event()
    builds: list[str] = []
    results: list[str] = []

    def slow_build() -> str:
        builds.append("a")
        started.set()
        assert release.wait(10)
        return "page a"

    def view() -> None:
        results.append(cache.get_or_build("a", slow_build))

    first = threading.Thread(target=view)
    first.start()
    assert started.wait(10)
    waiting = [threading.Thread(target=view) for _ in range(3)]
    for t in waiting:
        t.start()
    # Another key is not held up by the slow build.
    assert cache.get_or_build("b", lambda: "page b") == "page b"
    release.set()
    for t in [first, *waiting]:
        t.join(10)
    assert results == ["page a"] * 4
    assert builds == ["a"]
    assert cache.misses == 2
