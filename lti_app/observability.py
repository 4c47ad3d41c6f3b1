"""Structured logs (structlog) and Prometheus metrics (prometheus-client).

Every log line, ours or a library's (werkzeug, gunicorn, alembic), goes through one redaction
step before it is written: values under secret-looking keys are masked, and secret-looking
strings (Moodle tokens, JWTs, PEM keys, Fernet tokens, `wstoken=` and LTI launch-token `lt=`
query parameters) are masked wherever they appear. Logs are for operators; they must never
become a way to steal a token.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

MASK = "[redacted]"

_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|private|api[_-]?key|authorization|cookie|id_token|jwt|"
    r"encryption_key|client_assertion)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----)"
    r"|(?P<param>(?:wstoken|token|id_token|access_token|(?<![A-Za-z0-9_])lt)=)[^&\s\"']+"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
    r"|(?P<fernet>\bgAAAAA[A-Za-z0-9_=-]{20,})"
    r"|(?P<moodle>\b[0-9a-f]{32}\b)",
    re.DOTALL,
)


def redact_text(text: str) -> str:
    """Mask secret-looking substrings of a free-text value."""

    def _sub(m: re.Match[str]) -> str:
        if m.group("param"):
            return m.group("param") + MASK
        return MASK

    return _SECRET_VALUE.sub(_sub, text)


def redact(value: Any, key: str = "") -> Any:
    """Return `value` with secrets masked, recursing into mappings and sequences."""
    if key and _SECRET_KEY.search(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _redact_processor(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        out[key] = value if key in {"timestamp", "level", "logger"} else redact(value, key)
    return dict(out)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and stdlib logging through the same redacting JSON (or console) renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_arche_predict", False):
            root.removeHandler(old)
    handler._arche_predict = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class HttpMetrics:
    """Per-endpoint request count and latency histogram, on the app's own registry.

    Each app gets its own registry so that several apps in one process (tests) do not collide
    on metric names. Under gunicorn with several workers, `multiprocess_dir` is set: each worker
    then writes its values to files there and `/metrics` sums them, so a scrape sees the whole
    server, not the one worker that happened to answer.

    prometheus_client is imported here, not at module level, because it picks its value store
    when first imported: the gunicorn master must not import it before the directory is set.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "arche_predict_http_requests_total",
            "HTTP requests handled, by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=None if multiprocess_dir else self.registry,
        )
        self.latency = Histogram(
            "arche_predict_http_request_duration_seconds",
            "Time spent handling an HTTP request, by endpoint and method.",
            ["endpoint", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=None if multiprocess_dir else self.registry,
        )

    def observe(self, endpoint: str, method: str, status: int, started: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint, method).observe(time.perf_counter() - started)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of this process, or of every worker in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
