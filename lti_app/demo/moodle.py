"""A simulated Moodle site served over Moodle's REST protocol, for `arche-predict demo`.

It answers the web-service functions the tool calls, with data from `simulation`, in the
shapes a real Moodle 5.1 gives (see tests/fixtures/moodle-5.1): so the demo runs the real `ws`
sync, not a shortcut. Enabled only by the demo configuration; never part of a production server.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from lti_app.demo import coursework
from lti_app.demo.actions import ActionError, CourseNote, SentMessage, SiteActions
from simulation.course import SimulatedCourse, SimulatedOffering
from simulation.exports import course_grading_json, grade_items_json

FUNCTIONS = (
    "core_webservice_get_site_info",
    "core_course_get_courses_by_field",
    "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "gradereport_user_get_grade_items",
    "core_course_get_contents",
    "core_completion_get_activities_completion_status",
    "local_archepredict_get_course_logs",
    "local_archepredict_get_course_grading",
    "mod_assign_get_assignments",
    "mod_assign_get_submissions",
    "mod_quiz_get_quizzes_by_courses",
    "mod_quiz_get_user_attempts",
    # Teacher actions (#16): stateful, see lti_app/demo/actions.py.
    "core_group_get_course_groups",
    "core_group_get_group_members",
    "core_group_create_groups",
    "core_group_add_group_members",
    "core_group_delete_group_members",
    "core_message_send_instant_messages",
    "core_notes_create_notes",
)
#: The web-service user's id (`core_webservice_get_site_info`): the sender of every message.
WS_USERID = 2


def _error(errorcode: str, message: str, exception: str = "moodle_exception") -> dict[str, str]:
    return {"exception": exception, "errorcode": errorcode, "message": message}


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


class SimulatedMoodle:
    """WSGI app: one site, every offering of a simulated course as a Moodle course."""

    def __init__(
        self,
        simulated: SimulatedCourse,
        token: str | None = None,
        *,
        also_taught: Mapping[int, Iterable[int]] | None = None,
    ) -> None:
        """`also_taught` maps a teacher's user id to offerings they taught (each offering of
        `simulation` has its own teacher; the user may be one it does not know): they are
        enrolled there as `editingteacher`, so a course's teacher can find and link its past
        offerings (#17)."""
        self.simulated = simulated
        self.token = token or secrets.token_hex(16)
        self.courses: dict[int, SimulatedOffering] = {o.courseid: o for o in simulated.offerings}
        self.extra_teachers: dict[int, list[dict[str, Any]]] = {}
        for userid, courseids in (also_taught or {}).items():
            row = next(
                (
                    {str(k): v for k, v in o.users.loc[o.users["userid"] == userid].iloc[0].items()}
                    for o in simulated.offerings
                    if (o.users["userid"] == userid).any()
                ),
                # A teacher the simulation does not know (an LTI test launch's user).
                {
                    "userid": userid,
                    "username": f"teacher{userid}",
                    "firstname": "Teacher",
                    "lastname": str(userid),
                    "fullname": f"Teacher {userid}",
                    "email": f"teacher{userid}@example.invalid",
                    "idnumber": "",
                },
            )
            for courseid in courseids:
                self.extra_teachers.setdefault(courseid, []).append(
                    {**row, "role": "editingteacher", "courseid": courseid}
                )
        #: Groups, messages and notes (#16). Every offering starts with "Groupe A" and
        #: "Groupe B" splitting its students.
        self.actions = SiteActions(self.courses, WS_USERID)
        self._server: BaseWSGIServer | None = None

    # ------------------------------------------------------------------ serving

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = make_server(host, port, self, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path != "/webservice/rest/server.php" or request.method != "POST":
            return Response("Not found", status=404)(environ, start_response)
        params = dict(request.form.items())
        name = params.pop("wsfunction", "")
        if params.pop("wstoken", "") != self.token:
            body: Any = _error("invalidtoken", "Invalid token - token not found")
        elif name not in FUNCTIONS:
            body = _error(
                "invalidrecordunknown",
                "Can't find data record in database table external_functions.",
                "dml_missing_record_exception",
            )
        else:
            try:
                body = getattr(self, name)(params)
            except ActionError as exc:
                body = exc.body
            except KeyError:
                body = _error(
                    "invalidrecordunknown", "Can't find data record in database table course."
                )
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    @property
    def sent_messages(self) -> list[SentMessage]:
        """Every instant message delivered, in order (`touserid`, `text`, `msgid`, ...)."""
        return self.actions.sent_messages

    @property
    def notes(self) -> list[CourseNote]:
        """Every course note created, in order (`userid`, `courseid`, `text`, ...)."""
        return self.actions.notes

    def _course(self, params: dict[str, str]) -> SimulatedOffering:
        return self.courses[int(params.get("courseid", "0"))]

    # ------------------------------------------------------------------ functions

    def core_webservice_get_site_info(self, params: dict[str, str]) -> dict[str, Any]:
        return {
            "sitename": "ARCHE (simulated)",
            "username": "wsuser",
            "firstname": "Web",
            "lastname": "Service",
            "fullname": "Web Service",
            "lang": "fr",
            "userid": WS_USERID,
            "siteurl": "http://moodle.invalid",
            "userpictureurl": "",
            "functions": [{"name": f, "version": "2025100600"} for f in FUNCTIONS],
            "downloadfiles": 0,
            "uploadfiles": 0,
            "release": "5.1+ (Build: 20251017) simulated",
            "version": "2025100600.02",
            "mobilecssurl": "",
            "advancedfeatures": [],
            "usercanmanageownfiles": False,
            "userquota": 0,
            "usermaxuploadfilesize": 0,
            "userhomepage": 1,
            "userissiteadmin": False,
            "theme": "boost",
        }

    def core_course_get_courses_by_field(self, params: dict[str, str]) -> dict[str, Any]:
        found = []
        for off in self.courses.values():
            if params.get("field") == "id" and str(off.courseid) != params.get("value"):
                continue
            if params.get("field") == "category" and params.get("value") != "1":
                continue
            found.append(
                {
                    "id": off.courseid,
                    "fullname": f"{off.spec.fullname} ({off.start.year})",
                    "displayname": f"{off.spec.fullname} ({off.start.year})",
                    "shortname": f"{off.spec.shortname}-{off.start.year}",
                    "categoryid": 1,
                    "categoryname": "Informatique",
                    "sortorder": 10000,
                    "summary": "",
                    "summaryformat": 1,
                    "summaryfiles": [],
                    "overviewfiles": [],
                    "showactivitydates": True,
                    "showcompletionconditions": True,
                    "contacts": [],
                    "enrollmentmethods": ["manual"],
                    "idnumber": f"{off.spec.shortname}-{off.start.year}",
                    "format": "topics",
                    "showgrades": 1,
                    "newsitems": 5,
                    "startdate": int(off.start.timestamp()),
                    "enddate": int(off.end.timestamp()),
                    "maxbytes": 0,
                    "showreports": 0,
                    "visible": 1,
                    "groupmode": 0,
                    "groupmodeforce": 0,
                    "defaultgroupingid": 0,
                    "enablecompletion": 1,
                    "completionnotify": 0,
                    "lang": "",
                    "theme": "",
                    "marker": 0,
                    "legacyfiles": 0,
                    "calendartype": "",
                    "timecreated": int(off.start.timestamp()) - 86400 * 30,
                    "timemodified": int(off.start.timestamp()),
                    "requested": 0,
                    "cacherev": 1,
                    "filters": [],
                    "courseformatoptions": [],
                }
            )
        return {"courses": found, "warnings": []}

    def core_enrol_get_enrolled_users(self, params: dict[str, str]) -> list[dict[str, Any]]:
        off = self._course(params)
        opts = {
            params[k]: params[k.replace("[name]", "[value]")]
            for k in params
            if k.startswith("options[") and k.endswith("[name]")
        }
        users = self._roster(off)
        start, number = int(opts.get("limitfrom", 0)), int(opts.get("limitnumber", 0))
        page = users.iloc[start : start + number] if number else users.iloc[start:]
        out = []
        for u in page.to_dict("records"):
            student = u["role"] == "student"
            shortname = str(u["role"])  # "student" or "editingteacher", as simulated
            out.append(
                {
                    "id": int(u["userid"]),
                    "username": str(u["username"]),
                    "firstname": str(u["firstname"]),
                    "lastname": str(u["lastname"]),
                    "fullname": str(u["fullname"]),
                    "email": str(u["email"]),
                    "department": "",
                    "idnumber": str(u["idnumber"]),
                    "firstaccess": int(off.start.timestamp()),
                    "lastaccess": int(off.start.timestamp()),
                    "lastcourseaccess": int(off.start.timestamp()),
                    "roles": [
                        {
                            "roleid": 5 if student else 3,
                            "name": "",
                            "shortname": shortname,
                            "sortorder": 0,
                        }
                    ],
                }
            )
        return out

    def _roster(self, off: SimulatedOffering) -> pd.DataFrame:
        extra = self.extra_teachers.get(off.courseid)
        users = off.users if not extra else pd.concat([off.users, pd.DataFrame(extra)])
        return users.drop_duplicates("userid").sort_values("userid")

    def core_enrol_get_users_courses(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """The user's courses in the recorded shape (tests/fixtures/moodle-5.1/
        core_enrol_get_users_courses__teacher.json): every offering whose roster lists them,
        with no role, as Moodle answers."""
        userid = int(params.get("userid", "0"))
        found = []
        for off in self.courses.values():
            roster = self._roster(off)
            if not (roster["userid"] == userid).any():
                continue
            name = f"{off.spec.fullname} ({off.start.year})"
            found.append(
                {
                    "id": off.courseid,
                    "shortname": f"{off.spec.shortname}-{off.start.year}",
                    "fullname": name,
                    "displayname": name,
                    "enrolledusercount": len(roster),
                    "idnumber": f"{off.spec.shortname}-{off.start.year}",
                    "visible": 1,
                    "summary": "",
                    "summaryformat": 1,
                    "format": "topics",
                    "courseimage": "",
                    "showgrades": True,
                    "lang": "",
                    "enablecompletion": True,
                    "completionhascriteria": False,
                    "completionusertracked": False,
                    "category": 1,
                    "progress": None,
                    "completed": False,
                    "startdate": int(off.start.timestamp()),
                    "enddate": int(off.end.timestamp()),
                    "marker": 0,
                    "lastaccess": int(off.start.timestamp()),
                    "isfavourite": False,
                    "hidden": False,
                    "overviewfiles": [],
                    "showactivitydates": False,
                    "showcompletionconditions": True,
                    "timemodified": int(off.start.timestamp()),
                }
            )
        return found

    def gradereport_user_get_grade_items(self, params: dict[str, str]) -> dict[str, Any]:
        return grade_items_json(self._course(params))

    def core_course_get_contents(self, params: dict[str, str]) -> list[dict[str, Any]]:
        off = self._course(params)
        modules: list[dict[str, Any]] = [
            {
                "id": a.cmid,
                "name": a.name,
                "instance": a.instance,
                "modname": a.modname,
                "visible": 1,
                "uservisible": True,
                "completion": 1,
                "url": None,
                "dates": [],
            }
            for a in off.spec.activities
        ]
        return [{"id": 1, "section": 0, "name": "Général", "visible": 1, "modules": modules}]

    def core_completion_get_activities_completion_status(
        self, params: dict[str, str]
    ) -> dict[str, Any]:
        return coursework.completion(self._course(params), params)

    def mod_assign_get_assignments(self, params: dict[str, str]) -> dict[str, Any]:
        return coursework.assignments(self.courses[int(params["courseids[0]"])], params)

    def mod_assign_get_submissions(self, params: dict[str, str]) -> dict[str, Any]:
        return coursework.submissions(self._by_instance("assign", params), params)

    def mod_quiz_get_quizzes_by_courses(self, params: dict[str, str]) -> dict[str, Any]:
        return coursework.quizzes(self.courses[int(params["courseids[0]"])], params)

    def mod_quiz_get_user_attempts(self, params: dict[str, str]) -> dict[str, Any]:
        return coursework.user_attempts(self._by_instance("quiz", params), params)

    def _by_instance(self, modname: str, params: dict[str, str]) -> SimulatedOffering:
        return coursework.offering_of(self.courses, modname, params)

    def local_archepredict_get_course_grading(self, params: dict[str, str]) -> dict[str, Any]:
        return course_grading_json(self._course(params))

    def local_archepredict_get_course_logs(self, params: dict[str, str]) -> dict[str, Any]:
        off = self._course(params)
        after = int(params.get("afterid", 0))
        limit = min(int(params.get("limit", 1000)), 5000)
        ids = off.log["id"].to_numpy()
        rest = off.log[ids > after].sort_values("id")
        page = rest.iloc[:limit]
        rows = [{k: _clean(v) for k, v in r.items()} for r in page.to_dict("records")]
        body: dict[str, Any] = {
            "logs": rows,
            "lastid": int(page["id"].iloc[-1]) if len(page) else after,
            "hasmore": len(rest) > limit,
        }
        if params.get("withcount") in {"1", "true", "True"}:
            body["remaining"] = len(rest)
        return body

    # ------------------------------------------------------------------ teacher actions (#16)

    def core_group_get_course_groups(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.actions.course_groups(params)

    def core_group_get_group_members(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.actions.group_members(params)

    def core_group_create_groups(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.actions.create_groups(params)

    def core_group_add_group_members(self, params: dict[str, str]) -> None:
        return self.actions.add_group_members(params)

    def core_group_delete_group_members(self, params: dict[str, str]) -> None:
        return self.actions.delete_group_members(params)

    def core_message_send_instant_messages(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.actions.send_instant_messages(params)

    def core_notes_create_notes(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.actions.create_notes(params)
