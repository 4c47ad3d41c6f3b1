"""gunicorn integration: `arche-predict serve` runs our app factory inside gunicorn's master.

Using gunicorn's `BaseApplication` keeps the settings object the CLI already validated, instead
of passing configuration through environment variables to a separate `gunicorn` process.
"""

from __future__ import annotations

import errno
import hashlib
import os
import selectors
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn, ThreadWorker

from lti_app.app import create_app
from lti_app.config import PROMETHEUS_ENV, Settings
from lti_app.observability import configure_logging


class StructuredGunicornLogger(Logger):  # type: ignore[misc]
    """Send gunicorn's own lines through the root logger, so they are JSON and redacted too."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.propagate = True


class PollingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, with a new connection waiting for its first request in the
    worker's poller rather than in one of its threads.

    gunicorn 24+ hands an accepted connection straight to the thread pool, where a thread waits
    up to 5 s for the request before giving the connection back to the poller. A client that
    connects before it asks (a browser's preconnect, or 50 teachers whose pages open connections
    and then read for a few seconds) holds a thread each while it is silent, and requests that
    did arrive queue behind them: the dashboard benchmark saw 1-2 s answers for pages the
    application served in 20 ms (p99 1.2-1.7 s, every slow one at a client's first request).
    Here the connection goes to the poller at once, as gunicorn already does with a kept-alive
    connection between requests, and reaches a thread only when its request is there. A
    connection that stays silent is closed after the keep-alive timeout (5 s with keep-alive
    off), like one deferred by gunicorn itself (``pending_conns``, swept by ``murder_pending``),
    and within gunicorn's stop linger when the worker stops, like a kept-alive one: a silent
    connection must not hold a stopping worker for its whole graceful timeout.

    Ctrl-C in a terminal reaches each worker twice, as SIGINT from the terminal and as SIGQUIT
    from the master. gunicorn's quit handler shuts the thread pool down under the pool's own
    lock; the second signal, handled while the first holds that lock, shut it down again and
    waited for the lock forever, until the master killed the worker 20 s later (seen with
    ``make demo`` once a page had been served). The second quit is ignored here: the first is
    already stopping the worker.
    """

    #: How long a silent new connection may wait when keep-alive is off (gunicorn's own wait).
    SILENT_WITHOUT_KEEPALIVE = 5.0
    #: Whether a quit signal is already being handled (see the class docstring).
    _quitting = False

    def handle_quit(self, sig: Any, frame: Any) -> None:
        if self._quitting:
            return
        self._quitting = True
        super().handle_quit(sig, frame)

    def accept(self, listener: Any) -> None:
        try:
            client, address = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        # The same wait for every new connection, so `pending_conns` stays in timeout order
        # (`murder_pending` stops at the first one not due).
        conn.timeout = time.monotonic() + (self.cfg.keepalive or self.SILENT_WITHOUT_KEEPALIVE)
        self.pending_conns.append(conn)
        self.poller.register(
            client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def _cap_keepalive(self, deadline: float) -> None:
        """On stop, gunicorn caps its kept-alive connections' wait; the silent new ones too."""
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)


def _worker_exited(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared metrics (counters are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def control_socket_path(settings: Settings, bind: str) -> str:
    """This instance's gunicorn control socket: in its instance folder (private, 0700), named
    by the port. A Unix socket path holds at most 107 bytes; a longer one goes to the temporary
    directory under a name derived from the same two things."""
    port = bind.rsplit(":", 1)[-1] if ":" in bind else bind
    safe_port = "".join(c for c in port if c.isalnum()) or "0"
    path = settings.instance_dir.resolve() / f"gunicorn-{safe_port}.ctl"
    if len(os.fsencode(str(path))) <= 100:
        return str(path)
    digest = hashlib.sha256(f"{path}".encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"arche-predict-{digest}.ctl")


class GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, *, bind: str, workers: int) -> None:
        self.settings = settings
        configure_logging(settings.app.log_level, settings.app.log_format)
        # Workers share metrics through files; a fresh folder per server start, set before any
        # worker imports prometheus_client (which reads it once, at import).
        metrics_dir = settings.instance_dir.resolve() / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[PROMETHEUS_ENV] = str(metrics_dir)
        self.options: dict[str, Any] = {
            "bind": bind,
            "workers": workers,
            "worker_class": PollingThreadWorker,
            "threads": 4,
            # Keep idle connections open longer than a reader's pause between pages: with
            # gunicorn's default (2 s), a browser (or a reverse proxy keeping its upstream
            # connections) that comes back after 3 s finds its connection closed and gets a
            # reset (the dashboard benchmark saw one in ten page loads fail that way). gthread
            # workers hold idle connections in their poller, not in a thread, so this is cheap.
            # 75 s is nginx's default keep-alive.
            "keepalive": 75,
            "timeout": 60,
            "graceful_timeout": 20,
            # Request metrics and the structured app logs replace gunicorn's access log.
            "accesslog": None,
            "logger_class": StructuredGunicornLogger,
            "child_exit": _worker_exited,
            "forwarded_allow_ips": "*" if settings.app.proxy_count else "127.0.0.1",
            # gunicorn's control socket defaults to one path per user
            # (~/.gunicorn/gunicorn.ctl): a second instance (the demo beside a test server, two
            # configurations) would take over the first one's. One per instance and port.
            "control_socket": control_socket_path(settings, bind),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)
