"""A Moodle web-service stub over real HTTP, serving responses recorded from Moodle 5.1.

It speaks the REST protocol the client uses (POST form to /webservice/rest/server.php, errors
as HTTP 200 JSON bodies) and also plays the companion plugin's log function over generated log
rows, so a sync can page through them. Hooks let a test count, fail or stall calls.

The teacher actions (#16: groups, instant messages, course notes) are stateful, built on the
recorded answers: course 2 starts with the recorded "Groupe A" and "Groupe B" and their members,
a created group gets the next id (3, as recorded), a taken name gets the recorded
`invalidparameter`; every delivered message and created note is kept in `sent_messages` and
`notes` (dicts with the request's fields, plus `msgid` / `noteid`).
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
        #: Called before each answer; returning an HTTP status answers with it instead.
        self.before_call: Callable[[str, dict[str, str]], int | None] | None = None
        self.sent_messages: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        #: Recipients whose message preferences refuse the tool (the recorded
        #: `usercantbemessaged` answer); empty unless a test adds some.
        self.unreachable: set[int] = set()
        self.groups: list[dict[str, Any]] = fixture("core_group_get_course_groups.json")
        self.group_userids: dict[int, list[int]] = {
            g["groupid"]: list(g["userids"]) for g in fixture("core_group_get_group_members.json")
        }
        #: Rosters by course id, replacing the recorded one (where teacher1, user 3, teaches):
        #: a test makes a course one the teacher did not teach (#17).
        self.rosters: dict[int, list[dict[str, Any]]] = {}
        self._actions_lock = threading.Lock()
        self.handlers: dict[str, Handler] = {
            "core_webservice_get_site_info": lambda p: fixture(
                "core_webservice_get_site_info.json"
            ),
            "core_course_get_courses_by_field": self._courses,
            "core_enrol_get_enrolled_users": self._enrolled_users,
            "core_enrol_get_users_courses": self._users_courses,
            "gradereport_user_get_grade_items": lambda p: fixture(
                "gradereport_user_get_grade_items.json"
            ),
            "local_archepredict_get_course_logs": self._logs,
            # The companion plugin 0.2.0's pass mark (written by hand from its declared return
            # structure: see tests/fixtures/moodle-5.1/README.md, "Written by hand").
            "local_archepredict_get_course_grading": lambda p: fixture(
                "local_archepredict_get_course_grading__course2.json"
            ),
            "core_group_get_course_groups": self._course_groups,
            "core_group_get_group_members": self._group_members,
            "core_group_create_groups": self._create_groups,
            "core_group_add_group_members": self._add_members,
            "core_group_delete_group_members": self._delete_members,
            "core_message_send_instant_messages": self._send_messages,
            "core_notes_create_notes": self._create_notes,
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
        if params.get("field") == "category":  # category 1, as recorded (section 11)
            return fixture("core_course_get_courses_by_field__category.json")
        body = fixture("core_course_get_courses_by_field.json")
        if params.get("field") == "id":
            for course in body["courses"]:
                course["id"] = int(params["value"])
        return body

    def _users_courses(self, params: dict[str, str]) -> Any:
        """As recorded for teacher1 (user 3: courses 2, 3 and 4) and student01 (user 4)."""
        recorded = {3: "teacher", 4: "student"}.get(int(params.get("userid", "0")))
        return fixture(f"core_enrol_get_users_courses__{recorded}.json") if recorded else []

    def _enrolled_users(self, params: dict[str, str]) -> Any:
        override = self.rosters.get(int(params.get("courseid", "0")))
        users = override if override is not None else fixture("core_enrol_get_enrolled_users.json")
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

    # ------------------------------------------------------------------ teacher actions (#16)

    def users(self) -> set[int]:
        """The users the site knows: the recorded roster and the token user."""
        site = fixture("core_webservice_get_site_info.json")
        return {u["id"] for u in fixture("core_enrol_get_enrolled_users.json")} | {site["userid"]}

    def _course_groups(self, params: dict[str, str]) -> Any:
        with self._actions_lock:
            return [g for g in self.groups if g["courseid"] == int(params["courseid"])]

    def _group_members(self, params: dict[str, str]) -> Any:
        with self._actions_lock:
            out = []
            for gid in _listed(params, "groupids"):
                if gid not in self.group_userids:
                    return {
                        "exception": "dml_missing_record_exception",
                        "errorcode": "invalidrecord",
                        "message": "Can't find data record in database table groups.",
                    }
                out.append({"groupid": gid, "userids": list(self.group_userids[gid])})
            return out

    def _create_groups(self, params: dict[str, str]) -> Any:
        with self._actions_lock:
            wanted = _indexed(params, "groups")
            for g in wanted:
                taken = {x["name"] for x in self.groups if x["courseid"] == int(g["courseid"])}
                if g["name"] in taken:
                    return fixture("error_group_name_exists.json")
            made = []
            for g in wanted:
                row = {
                    **fixture("core_group_create_groups.json")[0],
                    "id": max([x["id"] for x in self.groups], default=0) + 1,
                    "courseid": int(g["courseid"]),
                    "name": g["name"],
                    "description": g.get("description", ""),
                    "descriptionformat": int(g.get("descriptionformat", "1")),
                }
                self.groups.append(row)
                self.group_userids[row["id"]] = []
                made.append(row)
            return made

    def _add_members(self, params: dict[str, str]) -> Any:
        with self._actions_lock:
            for m in _indexed(params, "members"):
                members = self.group_userids[int(m["groupid"])]
                if int(m["userid"]) not in members:
                    members.append(int(m["userid"]))
        return fixture("core_group_add_group_members.json")  # null

    def _delete_members(self, params: dict[str, str]) -> Any:
        with self._actions_lock:
            for m in _indexed(params, "members"):
                members = self.group_userids[int(m["groupid"])]
                if int(m["userid"]) in members:
                    members.remove(int(m["userid"]))
        return fixture("core_group_delete_group_members.json")  # null

    def _send_messages(self, params: dict[str, str]) -> Any:
        """One recorded answer per message; a batch with a refused recipient fails as a whole
        after delivering the others (recorded)."""
        known = self.users()
        answers: list[dict[str, Any]] = []
        with self._actions_lock:
            for m in _indexed(params, "messages"):
                userid = int(m["touserid"])
                if userid not in known:
                    answer = fixture("core_message_send_instant_messages__nosuchuser.json")[0]
                    answer["errormessage"] = answer["errormessage"].replace("99999", str(userid))
                    answer.pop("clientmsgid", None)
                elif userid in self.unreachable:
                    answer = fixture("core_message_send_instant_messages__usercantbemessaged.json")[
                        0
                    ]
                else:
                    msgid = len(self.sent_messages) + 1
                    self.sent_messages.append({**m, "touserid": userid, "msgid": msgid})
                    answer = {
                        **fixture("core_message_send_instant_messages.json")[0],
                        "msgid": msgid,
                        "text": m.get("text", ""),
                    }
                if m.get("clientmsgid"):
                    answer = {
                        "msgid": answer.pop("msgid"),
                        "clientmsgid": m["clientmsgid"],
                        **answer,
                    }
                answers.append(answer)
        if len(answers) > 1 and any(a["msgid"] < 0 for a in answers):
            return fixture("error_format_not_supported__mixed_messages.json")
        return answers

    def _create_notes(self, params: dict[str, str]) -> Any:
        known = self.users()
        answers: list[dict[str, Any]] = []
        with self._actions_lock:
            for n in _indexed(params, "notes"):
                answer: dict[str, Any] = {}
                if "clientnoteid" in n:
                    answer["clientnoteid"] = n["clientnoteid"]
                if int(n["userid"]) not in known:
                    # Not recorded: Moodle's own string (notes/lang: invaliduserid).
                    answer.update(noteid=-1, errormessage=f"Invalid user id: {n['userid']}")
                else:
                    noteid = len(self.notes) + 1
                    self.notes.append(
                        {
                            **n,
                            "userid": int(n["userid"]),
                            "courseid": int(n["courseid"]),
                            "noteid": noteid,
                        }
                    )
                    answer["noteid"] = noteid
                answers.append(answer)
        return answers

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
            status = self.before_call(name, params)
            if status is not None:  # a proxy's answer instead of Moodle's (e.g. 502)
                return Response("upstream failed", status=status)(environ, start_response)
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


def _indexed(params: dict[str, str], name: str) -> list[dict[str, str]]:
    """`name[0][key]=..&name[1][key]=..` as a list of dicts, in index order."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        if key.startswith(f"{name}["):
            index, _, rest = key[len(name) + 1 :].partition("]")
            if index.isdigit() and rest.strip("[]"):
                rows.setdefault(int(index), {})[rest.strip("[]")] = value
    return [rows[i] for i in sorted(rows)]


def _listed(params: dict[str, str], name: str) -> list[int]:
    """`name[0]=..&name[1]=..` as a list of integers, in index order."""
    pairs = [
        (int(k[len(name) + 1 : -1]), int(v))
        for k, v in params.items()
        if k.startswith(f"{name}[") and k[len(name) + 1 : -1].isdigit()
    ]
    return [v for _, v in sorted(pairs)]
