"""The simulated Moodle's teacher actions (issue #16): course groups, instant messages and course
notes, stateful, in the shapes Moodle 5.1 recorded (tests/fixtures/moodle-5.1, "Round 2",
sections 3 to 5).

Every offering starts with two ordinary groups, "Groupe A" and "Groupe B", splitting its students
in two (as the recorded course 2 does), so the dashboards can be filtered by group. Groups made
or changed through the web service stay for the life of the site. Every delivered message and
every created note is kept (`sent_messages`, `notes`) for the tests to read.

What the recordings did not show is written from Moodle's code and said so where it is used.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from simulation.course import SimulatedOffering

#: Recorded: a course group made through the web service with a name the course already has.
GROUP_NAME_EXISTS = {
    "exception": "core\\exception\\invalid_parameter_exception",
    "errorcode": "invalidparameter",
    "message": "Invalid parameter value detected",
}
#: Recorded: one batch holding a recipient Moodle refuses fails as a whole, after delivering the
#: others.
MIXED_BATCH = {
    "exception": "core\\exception\\moodle_exception",
    "errorcode": "formatnotsupported",
    "message": "webservice/formatnotsupported",
}
#: Recorded reasons for a refused recipient (msgid -1, HTTP 200).
NO_SUCH_USER = "You cannot send a message to a user ID ({userid}) that doesn't exist."
CANT_BE_MESSAGED = (
    "You can't message this user due to their message preferences. Try adding them as a contact."
)


class ActionError(Exception):
    """A whole call refused: `body` is Moodle's error answer."""

    def __init__(self, body: dict[str, str]) -> None:
        super().__init__(body["message"])
        self.body = body


@dataclass(frozen=True)
class SentMessage:
    """An instant message Moodle delivered (and stored)."""

    msgid: int
    touserid: int
    text: str
    textformat: int
    clientmsgid: str
    timecreated: int


@dataclass(frozen=True)
class CourseNote:
    """A note created through `core_notes_create_notes`."""

    noteid: int
    courseid: int
    userid: int
    publishstate: str
    text: str
    format: int
    clientnoteid: str


def indexed(params: dict[str, str], name: str) -> list[dict[str, str]]:
    """Moodle's `name[0][key]=..&name[1][key]=..` parameters as a list of dicts, in index order."""
    rows: dict[int, dict[str, str]] = {}
    prefix = f"{name}["
    for key, value in params.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition("]")
        field = rest.strip("[]")
        if index.isdigit() and field:
            rows.setdefault(int(index), {})[field] = value
    return [rows[i] for i in sorted(rows)]


def listed(params: dict[str, str], name: str) -> list[int]:
    """Moodle's `name[0]=..&name[1]=..` list of integers, in index order."""
    prefix = f"{name}["
    pairs = [
        (int(k[len(prefix) : -1]), int(v))
        for k, v in params.items()
        if k.startswith(prefix) and k.endswith("]") and k[len(prefix) : -1].isdigit()
    ]
    return [v for _, v in sorted(pairs)]


@dataclass
class _Group:
    id: int
    courseid: int
    name: str
    description: str
    descriptionformat: int
    enrolmentkey: str | None
    members: list[int]

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "courseid": self.courseid,
            "name": self.name,
            "description": self.description,
            "descriptionformat": self.descriptionformat,
            "enrolmentkey": self.enrolmentkey,
            "idnumber": "",
            "visibility": 0,
            "participation": True,
        }


class SiteActions:
    """The groups, messages and notes of one simulated site (thread-safe: the server is
    threaded)."""

    def __init__(self, courses: dict[int, SimulatedOffering], ws_userid: int) -> None:
        self.courses = courses
        self.ws_userid = ws_userid
        self.sent_messages: list[SentMessage] = []
        self.notes: list[CourseNote] = []
        #: Users whose message preferences refuse the tool's messages (msgid -1, recorded
        #: reason); empty unless a test adds some.
        self.unreachable: set[int] = set()
        self._lock = threading.Lock()
        self._groups: dict[int, _Group] = {}
        self._enrolled: dict[int, set[int]] = {
            cid: {int(u) for u in off.users["userid"]} for cid, off in courses.items()
        }
        self._users = {self.ws_userid}.union(*self._enrolled.values())
        for cid in sorted(courses):
            students = sorted(int(u) for u in courses[cid].roster["userid"])
            half = (len(students) + 1) // 2
            for name, members in (("Groupe A", students[:half]), ("Groupe B", students[half:])):
                # Moodle lists members unsorted; the client sorts them.
                self._add_group(cid, name, "", None, list(reversed(members)))

    def _add_group(
        self, courseid: int, name: str, description: str, key: str | None, members: list[int]
    ) -> _Group:
        group = _Group(len(self._groups) + 1, courseid, name, description, 1, key, members)
        self._groups[group.id] = group
        return group

    def _group(self, groupid: int) -> _Group:
        """Moodle's "no such record" for a group that does not exist."""
        if groupid not in self._groups:
            raise ActionError(
                {
                    "exception": "dml_missing_record_exception",
                    "errorcode": "invalidrecord",
                    "message": "Can't find data record in database table groups.",
                }
            )
        return self._groups[groupid]

    def groups_of(self, courseid: int) -> list[dict[str, Any]]:
        """The course's groups as `core_group_get_course_groups` lists them."""
        return [g.json() for g in self._groups.values() if g.courseid == courseid]

    # ------------------------------------------------------------------ groups

    def course_groups(self, params: dict[str, str]) -> list[dict[str, Any]]:
        courseid = int(params.get("courseid", "0"))
        if courseid not in self.courses:
            raise KeyError(courseid)
        with self._lock:
            return self.groups_of(courseid)

    def group_members(self, params: dict[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"groupid": gid, "userids": list(self._group(gid).members)}
                for gid in listed(params, "groupids")
            ]

    def create_groups(self, params: dict[str, str]) -> list[dict[str, Any]]:
        wanted = indexed(params, "groups")
        with self._lock:
            for g in wanted:
                if int(g["courseid"]) not in self.courses:
                    raise KeyError(g["courseid"])
                taken = {x.name for x in self._groups.values() if x.courseid == int(g["courseid"])}
                if g["name"] in taken:
                    raise ActionError(GROUP_NAME_EXISTS)
            made = [
                self._add_group(
                    int(g["courseid"]), g["name"], g.get("description", ""), "", members=[]
                )
                for g in wanted
            ]
            return [g.json() for g in made]

    def _members(self, params: dict[str, str]) -> list[tuple[_Group, int]]:
        """The (group, user) pairs asked for. Moodle checks each user is enrolled in the group's
        course (not recorded: `invalid_parameter_exception`, from Moodle's code)."""
        pairs = [
            (self._group(int(m["groupid"])), int(m["userid"])) for m in indexed(params, "members")
        ]
        for group, userid in pairs:
            if userid not in self._enrolled[group.courseid]:
                raise ActionError(
                    {
                        "exception": "core\\exception\\invalid_parameter_exception",
                        "errorcode": "invalidparameter",
                        "message": "Invalid parameter value detected "
                        "(Only enrolled users may be members of groups)",
                    }
                )
        return pairs

    def add_group_members(self, params: dict[str, str]) -> None:
        with self._lock:
            for group, userid in self._members(params):
                if userid not in group.members:
                    group.members.append(userid)
        return None  # recorded: the JSON literal null

    def delete_group_members(self, params: dict[str, str]) -> None:
        with self._lock:
            for group, userid in self._members(params):
                if userid in group.members:
                    group.members.remove(userid)
        return None

    # ------------------------------------------------------------------ messages and notes

    def send_instant_messages(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """One answer per message: delivered (`msgid` > 0), or refused with `msgid` -1 and the
        recorded reason. A batch with a refused recipient fails as a whole after delivering the
        others, as recorded."""
        answers: list[dict[str, Any]] = []
        with self._lock:
            for m in indexed(params, "messages"):
                userid = int(m["touserid"])
                clientmsgid = m.get("clientmsgid", "")
                answer: dict[str, Any] = {}
                if clientmsgid:
                    answer["clientmsgid"] = clientmsgid
                if userid not in self._users or userid in self.unreachable:
                    reason = (
                        CANT_BE_MESSAGED
                        if userid in self._users
                        else NO_SUCH_USER.format(userid=userid)
                    )
                    answer.update(msgid=-1, errormessage=reason)
                else:
                    sent = SentMessage(
                        msgid=len(self.sent_messages) + 1,
                        touserid=userid,
                        text=m.get("text", ""),
                        textformat=int(m.get("textformat", "1")),
                        clientmsgid=clientmsgid,
                        timecreated=int(time.time()),
                    )
                    self.sent_messages.append(sent)
                    answer.update(
                        msgid=sent.msgid,
                        text=sent.text,
                        timecreated=sent.timecreated,
                        conversationid=1000 + userid,
                        useridfrom=self.ws_userid,
                    )
                answer["candeletemessagesforallusers"] = False
                answers.append(answer)
        if len(answers) > 1 and any(a["msgid"] < 0 for a in answers):
            raise ActionError(MIXED_BATCH)
        return answers

    def create_notes(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """`[{clientnoteid, noteid}]` as recorded; a note about an unknown user or course gets
        `noteid` -1 with Moodle's reason (not recorded: the strings are Moodle's)."""
        answers: list[dict[str, Any]] = []
        with self._lock:
            for n in indexed(params, "notes"):
                courseid, userid = int(n.get("courseid", "0")), int(n["userid"])
                answer: dict[str, Any] = {}
                if "clientnoteid" in n:
                    answer["clientnoteid"] = n["clientnoteid"]
                if courseid not in self.courses:
                    answer.update(noteid=-1, errormessage="Invalid course ID")
                elif userid not in self._users:
                    answer.update(noteid=-1, errormessage=f"Invalid user id: {userid}")
                else:
                    note = CourseNote(
                        noteid=len(self.notes) + 1,
                        courseid=courseid,
                        userid=userid,
                        publishstate=n.get("publishstate", "course"),
                        text=n.get("text", ""),
                        format=int(n.get("format", "1")),
                        clientnoteid=n.get("clientnoteid", ""),
                    )
                    self.notes.append(note)
                    answer["noteid"] = note.noteid
                answers.append(answer)
        return answers
