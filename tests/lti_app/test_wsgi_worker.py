"""`PollingThreadWorker`: a silent new connection waits in the worker's poller, not in a thread.

gunicorn's own gthread worker hands each accepted connection to a thread, which waits up to 5 s
for the request: a few clients that connect and stay silent (a browser's preconnect) then hold
every thread while requests that did arrive queue behind them. These tests drive the worker's
accept path on real sockets, with a recording pool in place of the threads, and check where
each connection goes; `test_cli` checks that `serve` runs this worker.
"""

from __future__ import annotations

import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any
from unittest import mock

import pytest
from gunicorn.config import Config

from lti_app.wsgi import PollingThreadWorker


class _RecordingPool:
    """Stands for the thread pool: records what is submitted, runs nothing."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, fn: Any, conn: Any) -> Future[Any]:
        self.submitted.append(conn)
        return Future()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def worker(listener: socket.socket) -> Iterator[PollingThreadWorker]:
    cfg = Config()
    cfg.set("threads", 4)
    cfg.set("keepalive", 75)
    w = PollingThreadWorker(0, 0, [listener], mock.Mock(), 30, cfg, mock.Mock())
    w.poller = selectors.DefaultSelector()
    w.tpool = _RecordingPool()
    yield w
    w.poller.close()
    w.tmp.close()
    for conn in [*w.pending_conns, *w.tpool.submitted]:
        conn.close()


def _connect(listener: socket.socket) -> socket.socket:
    """A client connection, once the listener has it queued for `accept`."""
    client = socket.create_connection(listener.getsockname())
    with selectors.DefaultSelector() as ready:
        ready.register(listener, selectors.EVENT_READ)
        assert ready.select(10), "the connection never reached the listener"
    return client


def _dispatch(worker: PollingThreadWorker, timeout: float) -> None:
    for key, _ in worker.poller.select(timeout):
        key.data(key.fileobj)


def test_silent_connections_wait_in_the_poller_and_hold_no_thread(
    worker: PollingThreadWorker, listener: socket.socket
) -> None:
    clients = [_connect(listener) for _ in range(8)]  # twice the threads
    try:
        for _ in clients:
            worker.accept(listener)
        assert worker.nr_conns == 8
        assert len(worker.pending_conns) == 8
        assert worker.tpool.submitted == []  # no thread taken
        # Each waits for its first request with the keep-alive timeout, in accept order
        # (`murder_pending` sweeps from the left and stops at the first one not yet due).
        timeouts = [c.timeout for c in worker.pending_conns]
        assert timeouts == sorted(timeouts)

        # One client asks: its connection, and only it, goes to a thread, marked as having data.
        clients[5].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        _dispatch(worker, timeout=10)
        assert len(worker.tpool.submitted) == 1
        asked = worker.tpool.submitted[0]
        assert asked.data_ready
        assert asked.sock.getpeername() == clients[5].getsockname()
        assert asked not in worker.pending_conns
        assert len(worker.pending_conns) == 7
    finally:
        for c in clients:
            c.close()


def test_a_connection_silent_past_the_keepalive_timeout_is_closed(
    worker: PollingThreadWorker, listener: socket.socket
) -> None:
    client = _connect(listener)
    try:
        worker.accept(listener)
        conn = worker.pending_conns[0]
        conn.timeout = 0.0  # due
        worker.murder_pending()
        assert not worker.pending_conns
        assert worker.nr_conns == 0
        assert client.recv(1) == b""  # closed by the worker
    finally:
        client.close()


def test_an_accept_that_finds_no_connection_changes_nothing(
    worker: PollingThreadWorker, listener: socket.socket
) -> None:
    worker.accept(listener)  # nothing queued: EAGAIN, ignored as gunicorn does
    assert worker.nr_conns == 0
    assert not worker.pending_conns


def test_a_stopping_worker_closes_silent_connections_within_its_linger(
    worker: PollingThreadWorker, listener: socket.socket
) -> None:
    """gunicorn caps kept-alive connections when a worker stops; a silent new one is capped too,
    else one browser's preconnect held every restart for the whole graceful timeout."""
    clients = [_connect(listener) for _ in range(3)]
    try:
        for _ in clients:
            worker.accept(listener)
        deadline = time.monotonic()  # gunicorn passes now + its linger; here it has passed
        worker._cap_keepalive(deadline)
        assert [c.timeout for c in worker.pending_conns] == [deadline] * 3
        worker.murder_pending()  # the stop loop's sweep, once the deadline has passed
        assert not worker.pending_conns
        assert worker.nr_conns == 0
    finally:
        for c in clients:
            c.close()


def test_without_keepalive_a_silent_connection_still_gets_time_to_ask(
    listener: socket.socket,
) -> None:
    cfg = Config()
    cfg.set("keepalive", 0)
    w = PollingThreadWorker(0, 0, [listener], mock.Mock(), 30, cfg, mock.Mock())
    w.poller = selectors.DefaultSelector()
    w.tpool = _RecordingPool()
    client = _connect(listener)
    try:
        w.accept(listener)
        w.murder_pending()  # not due yet: it has gunicorn's own 5 s
        assert len(w.pending_conns) == 1
    finally:
        client.close()
        for conn in w.pending_conns:
            conn.close()
        w.poller.close()
        w.tmp.close()


def test_a_second_quit_signal_during_the_first_is_ignored(
    worker: PollingThreadWorker,
) -> None:
    """Ctrl-C reaches a worker as SIGINT from the terminal and SIGQUIT from the master; the
    second, handled while the first shuts the thread pool down under the pool's lock, used to
    shut it down again and wait for that lock forever. Here the pool's shutdown lets the second
    signal in, as the interpreter does between two bytecodes, with a real lock held."""
    held = threading.Lock()
    calls: list[bool] = []

    def shutdown(wait: bool = True, **_: Any) -> None:
        assert held.acquire(timeout=1), "the second quit re-entered the pool's shutdown"
        try:
            calls.append(wait)
            if len(calls) == 1:
                worker.handle_quit(signal.SIGQUIT, None)  # the master's, during the terminal's
        finally:
            held.release()

    worker.tpool.shutdown = shutdown
    with pytest.raises(SystemExit) as stopped:
        worker.handle_quit(signal.SIGINT, None)
    assert stopped.value.code == 0
    assert calls == [False]  # one shutdown, not waiting for the threads
