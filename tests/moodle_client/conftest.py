"""A real HTTP Moodle stub for the client tests, serving the responses recorded on Moodle 5.1.

The stub listens on 127.0.0.1 (werkzeug's server in a thread) and speaks the REST protocol:
POST form to /webservice/rest/server.php, errors as HTTP 200 JSON bodies. Tests script it per
wsfunction with a queue of ``Reply`` objects (a status, a body, a delay, a truncation), consumed
in order before the default answer, so "502 then success" is two entries.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from moodle_client import MoodleClient

FIXTURES = Path(__file__).parent.parent / "fixtures" / "moodle-5.1"
TOKEN = "f00dcafe0123456789abcdef0badc0de"
COURSE_ID = 2


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


@dataclass
class Reply:
    """One scripted answer: ``body`` (JSON-able, or raw ``bytes``), HTTP ``status``, a
    ``delay`` in seconds before answering, and ``truncate`` to cut the body to that many bytes."""

    body: Any = None
    status: int = 200
    delay: float = 0.0
    truncate: int | None = None


@dataclass
class Call:
    wsfunction: str
    form: MultiDict[str, str]
    headers: dict[str, str]
    path: str
    method: str
    query: str


def make_log_rows(n: int, courseid: int = COURSE_ID) -> list[dict[str, Any]]:
    """``n`` plugin rows with increasing ids (with gaps, like a shared log table)."""
    rows = []
    for i in range(1, n + 1):
        rows.append(
            {
                "id": i * 3,
                "eventname": "\\core\\event\\course_viewed",
                "component": "core",
                "action": "viewed",
                "target": "course",
                "objecttable": None,
                "objectid": None,
                "crud": "r",
                "edulevel": 2,
                "contextid": 31,
                "contextlevel": 50,
                "contextinstanceid": courseid,
                "userid": 4 + i % 40,
                "relateduserid": None,
                "courseid": courseid,
                "timecreated": 1_788_800_000 + i * 60,
                "origin": "web",
            }
        )
    return rows


@dataclass
class MoodleStub:
    """The stub's state. ``script[wsfunction]`` holds queued replies; ``calls`` every request."""

    url: str = ""
    script: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    calls: list[Call] = field(default_factory=list)
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    defaults: dict[str, Callable[[MultiDict[str, str]], Any]] = field(default_factory=dict)

    def queue(self, wsfunction: str, *replies: Reply) -> None:
        self.script[wsfunction].extend(replies)

    def calls_to(self, wsfunction: str) -> list[Call]:
        return [c for c in self.calls if c.wsfunction == wsfunction]

    # -------------------------------------------------------------- default answers
    def answer(self, wsfunction: str, form: MultiDict[str, str]) -> Any:
        if form.get("wstoken") != TOKEN:
            return fixture_json("error_bad_token.json")
        handler = self.defaults.get(wsfunction)
        if handler is None:
            return fixture_json("error_function_does_not_exist.json")
        return handler(form)


def _options(form: MultiDict[str, str]) -> dict[str, str]:
    names = {k: v for k, v in form.items() if k.startswith("options[") and k.endswith("[name]")}
    return {v: form.get(k.replace("[name]", "[value]"), "") for k, v in names.items()}


def _enrolled(form: MultiDict[str, str]) -> Any:
    users = fixture_json("core_enrol_get_enrolled_users.json")
    users.sort(key=lambda u: u["id"])
    options = _options(form)
    start = int(options.get("limitfrom", "0"))
    number = int(options.get("limitnumber", "0"))
    return users[start : start + number] if number else users[start:]


def _install_defaults(stub: MoodleStub) -> None:
    def recorded(name: str) -> Callable[[MultiDict[str, str]], Any]:
        return lambda form: fixture_json(f"{name}.json")

    for name in (
        "core_webservice_get_site_info",
        "core_course_get_courses_by_field",
        "gradereport_user_get_grade_items",
        "core_course_get_contents",
        "core_completion_get_activities_completion_status",
        "core_grades_get_gradeitems",
    ):
        stub.defaults[name] = recorded(name)
    stub.defaults["core_enrol_get_enrolled_users"] = _enrolled

    def logs(form: MultiDict[str, str]) -> Any:
        after = int(form.get("afterid", "0"))
        limit = min(int(form.get("limit", "1000")), 5000)
        rest = [r for r in stub.log_rows if r["id"] > after]
        page = rest[:limit]
        body: dict[str, Any] = {
            "logs": page,
            "lastid": page[-1]["id"] if page else after,
            "hasmore": len(rest) > limit,
        }
        if form.get("withcount") == "1":
            body["remaining"] = len(rest)
        return body

    stub.defaults["local_archepredict_get_course_logs"] = logs


def _app(stub: MoodleStub) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = request.form.copy()
        wsfunction = form.get("wsfunction", "")
        stub.calls.append(
            Call(
                wsfunction,
                form,
                dict(request.headers),
                request.path,
                request.method,
                request.query_string.decode(),
            )
        )
        if request.path != "/webservice/rest/server.php" or request.method != "POST":
            return Response("<html>Not found</html>", status=404)(environ, start_response)
        queued = stub.script[wsfunction]
        reply = queued.popleft() if queued else Reply(body=stub.answer(wsfunction, form))
        if reply.delay:
            time.sleep(reply.delay)
        raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        if reply.truncate is not None:
            raw = raw[: reply.truncate]
        response = Response(raw, status=reply.status, mimetype="application/json")
        return response(environ, start_response)

    return app


@pytest.fixture
def moodle() -> Iterator[MoodleStub]:
    """A running stub on 127.0.0.1 serving the recorded Moodle 5.1 answers."""
    stub = MoodleStub()
    _install_defaults(stub)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, _app(stub), threaded=True)
    stub.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Sleeps:
    """Records the client's backoff sleeps instead of sleeping."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(moodle: MoodleStub, sleeps: Sleeps) -> MoodleClient:
    return MoodleClient(
        moodle.url, TOKEN, timeout=2.0, max_retries=2, sleep=sleeps, rng=Random(1234)
    )


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every logger, urllib3 included, at DEBUG."""
    caplog.set_level(logging.DEBUG)
    return caplog
