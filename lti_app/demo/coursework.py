"""The simulated Moodle's coursework answers (issue #16, item 6), in the shapes Moodle 5.1
recorded (tests/fixtures/moodle-5.1, "Round 2", section 6), from the simulated offering: the
assignments and quizzes of its activities with their deadlines, submissions and quiz attempts
from its log's `assessable_submitted` and `attempt_submitted` events, and activity completion
from the same events and the module views. The running offering's log stops at its "now", so
work not done by then reads as missing once its deadline has passed, or not yet due.
"""

from __future__ import annotations

from typing import Any

from simulation.course import DAY, WEEK, Activity, SimulatedOffering

_SUBMITTED = "\\mod_assign\\event\\assessable_submitted"
_ATTEMPTED = "\\mod_quiz\\event\\attempt_submitted"
_MODULE = 70


#: Moodle's assignment and quiz ids are unique on a site; every simulated offering repeats the
#: same activities, so an offering's activity id is its course id times this plus the instance.
_PER_COURSE = 1000


def _mid(off: SimulatedOffering, a: Activity) -> int:
    return off.courseid * _PER_COURSE + a.instance


def offering_of(
    courses: dict[int, SimulatedOffering], modname: str, params: dict[str, str]
) -> SimulatedOffering:
    """The offering an assignment or quiz id (the first asked for) belongs to; KeyError (the
    simulated site's "no such record") for an id of none."""
    name = "assignmentids" if modname == "assign" else "quizid"
    ids = _ids(params, name) if modname == "assign" else [int(params.get(name, "0"))]
    if not ids:
        raise KeyError(name)
    return courses[ids[0] // _PER_COURSE]


def _ids(params: dict[str, str], name: str) -> list[int]:
    """Moodle's `name[0]=..&name[1]=..` list parameters."""
    return [int(v) for k, v in sorted(params.items()) if k.startswith(f"{name}[")]


def _t0(off: SimulatedOffering) -> int:
    return int(off.start.timestamp())


def _due(off: SimulatedOffering, a: Activity) -> int:
    return int(_t0(off) + (a.due or 0) * DAY) if a.due is not None else 0


def _opens(off: SimulatedOffering, a: Activity) -> int:
    return _t0(off) + a.opens_week * WEEK


def _done(off: SimulatedOffering, eventname: str, cmid: int) -> dict[int, int]:
    """{user id: time of their last such event in the module}."""
    log = off.log
    rows = log.loc[(log["eventname"] == eventname) & (log["contextinstanceid"] == cmid)]
    last = rows.groupby("userid")["timecreated"].max()
    return {int(u): int(t) for u, t in zip(last.index.tolist(), last.tolist(), strict=True)}


def _acts(off: SimulatedOffering, modname: str) -> list[Activity]:
    return [a for a in off.spec.activities if a.modname == modname]


def assignments(off: SimulatedOffering, params: dict[str, str]) -> dict[str, Any]:
    course = {
        "id": off.courseid,
        "fullname": off.spec.fullname,
        "shortname": off.spec.shortname,
        "timemodified": _t0(off),
        "assignments": [
            {
                "id": _mid(off, a),
                "cmid": a.cmid,
                "course": off.courseid,
                "name": a.name,
                "nosubmissions": 0,
                "submissiondrafts": 0,
                "duedate": _due(off, a),
                "allowsubmissionsfromdate": _opens(off, a),
                "grade": 20,
                "timemodified": _t0(off),
                "completionsubmit": 1,
                "cutoffdate": 0,
                "gradingduedate": _due(off, a) + 7 * DAY if a.due is not None else 0,
                "teamsubmission": 0,
                "requireallteammemberssubmit": 0,
                "maxattempts": 1,
                "configs": [
                    {
                        "plugin": "onlinetext",
                        "subtype": "assignsubmission",
                        "name": "enabled",
                        "value": "1",
                    }
                ],
                "intro": "",
                "introformat": 1,
                "introfiles": [],
                "introattachments": [],
                "timelimit": 0,
                "submissionattachments": 0,
            }
            for a in _acts(off, "assign")
        ],
    }
    return {"courses": [course], "warnings": []}


def submissions(off: SimulatedOffering, params: dict[str, str]) -> dict[str, Any]:
    wanted = set(_ids(params, "assignmentids"))
    out = []
    for a in _acts(off, "assign"):
        if _mid(off, a) not in wanted:
            continue
        rows: list[dict[str, Any]] = [
            {
                "id": _mid(off, a) * 100_000 + userid,
                "userid": userid,
                "attemptnumber": 0,
                "timecreated": at,
                "timemodified": at,
                "timestarted": None,
                "status": "submitted",
                "groupid": 0,
                "plugins": [],
                "gradingstatus": "notgraded",
            }
            for userid, at in sorted(_done(off, _SUBMITTED, a.cmid).items())
        ]
        out.append({"assignmentid": _mid(off, a), "submissions": rows})
    return {"assignments": out, "warnings": []}


def quizzes(off: SimulatedOffering, params: dict[str, str]) -> dict[str, Any]:
    return {
        "quizzes": [
            {
                "id": _mid(off, q),
                "coursemodule": q.cmid,
                "course": off.courseid,
                "name": q.name,
                "intro": "",
                "introformat": 1,
                "introfiles": [],
                "section": q.opens_week + 1,
                "visible": True,
                "groupmode": 0,
                "groupingid": 0,
                "lang": "",
                "timeopen": _opens(off, q),
                "timeclose": _due(off, q),
                "timelimit": 0,
                "preferredbehaviour": "deferredfeedback",
                "attempts": 1,
                "grademethod": 1,
                "decimalpoints": 2,
                "questiondecimalpoints": -1,
                "sumgrades": 4,
                "grade": 10,
                "hasfeedback": 0,
            }
            for q in _acts(off, "quiz")
        ],
        "warnings": [],
    }


def user_attempts(off: SimulatedOffering, params: dict[str, str]) -> dict[str, Any]:
    quizid, userid = int(params.get("quizid", "0")), int(params.get("userid", "0"))
    quiz = next(q for q in _acts(off, "quiz") if _mid(off, q) == quizid)
    done = _done(off, _ATTEMPTED, quiz.cmid)
    mine = [done[userid]] if userid in done else []
    attempts = [
        {
            "id": quizid * 100_000 + userid,
            "quiz": quizid,
            "userid": userid,
            "attempt": 1,
            "uniqueid": quizid * 100_000 + userid,
            "preview": 0,
            "state": "finished",
            "timestart": int(t) - 352,
            "timefinish": int(t),
            "timemodified": int(t),
            "sumgrades": None,
        }
        for t in mine
    ]
    return {"attempts": attempts, "warnings": []}


def completion(off: SimulatedOffering, params: dict[str, str]) -> dict[str, Any]:
    """Views complete a page, file, link or forum; a submission an assignment; an attempt a
    quiz (automatic completion, as the recorded course set it)."""
    userid = int(params.get("userid", "0"))
    log = off.log
    mine = log.loc[(log["userid"] == userid) & (log["contextlevel"] == _MODULE)]
    first_view = mine.groupby("contextinstanceid")["timecreated"].min().to_dict()
    rule = {_SUBMITTED: "completionsubmit", _ATTEMPTED: "completionusegrade"}
    statuses = []
    for a in off.spec.activities:
        if a.modname in ("assign", "quiz"):
            event = _SUBMITTED if a.modname == "assign" else _ATTEMPTED
            done = mine.loc[(mine["eventname"] == event) & (mine["contextinstanceid"] == a.cmid)]
            at = int(done["timecreated"].min()) if len(done) else 0
            name = rule[event]
        else:
            at = int(first_view.get(a.cmid, 0))
            name = "completionview"
        statuses.append(
            {
                "cmid": a.cmid,
                "modname": a.modname,
                "instance": a.instance,
                "state": 1 if at else 0,
                "timecompleted": at,
                "tracking": 2,
                "overrideby": None,
                "valueused": False,
                "hascompletion": True,
                "isautomatic": True,
                "istrackeduser": True,
                "uservisible": True,
                "details": [{"rulename": name, "rulevalue": {"status": 1 if at else 0}}],
                "isoverallcomplete": bool(at),
            }
        )
    return {"statuses": statuses, "warnings": []}
