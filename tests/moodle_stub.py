"""A Moodle web-service stub over real HTTP, serving responses recorded from Moodle 5.1.

It speaks the REST protocol the client uses (POST form to /webservice/rest/server.php, errors
as HTTP 200 JSON bodies) and also plays the companion plugin's log function over generated log
rows, so a sync can page through them. Hooks let a test count, fail or stall calls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).parent / "fixtures" / "moodle-5.1"
TOKEN = "5ad1c0ffee5ad1c0ffee5ad1c0ffee55"
COURSE_ID = 2
STUDENT_IDS = list(range(4, 44))
# (eventname, component, action, target, objecttable, crud, edulevel, contextlevel, cmid)
EVENTS = [
    ("\\core\\event\\course_viewed", "core", "viewed", "course", None, "r", 2, 50, 2),
    ("\\mod_page\\event\\course_module_viewed", "mod_page", "viewed", "course_module",
     "page", "r", 2, 70, 1),
    ("\\mod_quiz\\event\\attempt_submitted", "mod_quiz", "submitted", "attempt",
     "quiz_attempts", "u", 2, 70, 6),
    ("\\mod_forum\\event\\post_created", "mod_forum", "created", "post", "forum_posts",
     "c", 2, 70, 4),
    ("\\mod_assign\\event\\assessable_submitted", "mod_assign", "submitted", "assessable",
     "assign_submission", "u", 2, 70, 5),
]  # fmt: skip


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make_log_rows(
    n: int, course_id: int = COURSE_ID, start: int = 1_788_800_000
) -> list[dict[str, Any]]:
    """`n` standard-log rows with ids 1..n, deterministic, spread over the course's weeks."""
    rows = []
    for i in range(1, n + 1):
        name, comp, action, target, table, crud, edu, ctxlevel, cmid = EVENTS[(i * 7) % len(EVENTS)]
        rows.append(
            {
                "id": i,
                "eventname": name,
                "component": comp,
                "action": action,
                "target": target,
                "objecttable": table,
                "objectid": i if table else None,
                "crud": crud,
                "edulevel": edu,
                "contextid": 100 + cmid,
                "contextlevel": ctxlevel,
                "contextinstanceid": cmid if ctxlevel == 70 else course_id,
                "userid": STUDENT_IDS[(i * 13) % len(STUDENT_IDS)],
                "relateduserid": None,
                "courseid": course_id,
                "timecreated": start + i * 601,
                "origin": "web",
            }
        )
    return rows


Handler = Callable[[dict[str, str]], Any]


class MoodleStub:
    def __init__(self, log_rows: list[dict[str, Any]] | None = None) -> None:
        self.log_rows = log_rows if log_rows is not None else make_log_rows(120)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.before_call: Callable[[str, dict[str, str]], None] | None = None
        self.handlers: dict[str, Handler] = {
            "core_webservice_get_site_info": lambda p: fixture(
                "core_webservice_get_site_info.json"
            ),
            "core_course_get_courses_by_field": self._courses,
            "core_enrol_get_enrolled_users": self._enrolled_users,
            "gradereport_user_get_grade_items": lambda p: fixture(
                "gradereport_user_get_grade_items.json"
            ),
            "local_archepredict_get_course_logs": self._logs,
            # The companion plugin 0.2.0's pass mark (written by hand from its declared return
            # structure: see tests/fixtures/moodle-5.1/README.md, "Written by hand").
            "local_archepredict_get_course_grading": lambda p: fixture(
                "local_archepredict_get_course_grading__course2.json"
            ),
        }
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> MoodleStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def log_calls(self) -> int:
        return sum(1 for name, _ in self.calls if name == "local_archepredict_get_course_logs")

    # ------------------------------------------------------------------ handlers

    def _courses(self, params: dict[str, str]) -> Any:
        """The recorded course, renumbered to the id asked for (several courses, one fixture)."""
        body = fixture("core_course_get_courses_by_field.json")
        if params.get("field") == "id":
            for course in body["courses"]:
                course["id"] = int(params["value"])
        return body

    def _enrolled_users(self, params: dict[str, str]) -> Any:
        users = fixture("core_enrol_get_enrolled_users.json")
        opts = {
            params[k]: params[k.replace("[name]", "[value]")]
            for k in params
            if k.startswith("options[") and k.endswith("[name]")
        }
        start = int(opts.get("limitfrom", 0))
        number = int(opts.get("limitnumber", 0))
        return users[start : start + number] if number else users[start:]

    def _logs(self, params: dict[str, str]) -> Any:
        after = int(params.get("afterid", 0))
        limit = min(int(params.get("limit", 1000)), 5000)
        rest = [
            r for r in self.log_rows if r["id"] > after and r["courseid"] == int(params["courseid"])
        ]
        page = rest[:limit]
        body: dict[str, Any] = {
            "logs": page,
            "lastid": page[-1]["id"] if page else after,
            "hasmore": len(rest) > limit,
        }
        if params.get("withcount") in {"1", "true", "True"}:
            body["remaining"] = len(rest)
        return body

    # ------------------------------------------------------------------ WSGI

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path != "/webservice/rest/server.php" or request.method != "POST":
            return Response("not found", status=404)(environ, start_response)
        params = dict(request.form.items())
        name = params.pop("wsfunction", "")
        token = params.pop("wstoken", "")
        params.pop("moodlewsrestformat", None)
        self.calls.append((name, params))
        if self.before_call is not None:
            self.before_call(name, params)
        if token != TOKEN:
            body: Any = fixture("error_bad_token.json")
        elif name not in self.handlers:
            body = {
                "exception": "dml_missing_record_exception",
                "errorcode": "invalidrecordunknown",
                "message": "Can't find data record in database table external_functions.",
            }
        else:
            body = self.handlers[name](params)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)
