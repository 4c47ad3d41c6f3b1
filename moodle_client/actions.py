"""What a teacher does about the at-risk list, through Moodle's own web services (issue #16):
course groups and their members, instant messages, course notes.

Recorded on Moodle 5.1 (tests/fixtures/moodle-5.1/README.md, "Round 2", sections 3-5), and
followed here:

- **One message per call, never retried.** A batch with one bad recipient fails as a whole
  (`formatnotsupported`) *after* delivering to the good ones, so a retry would send those twice;
  and a call that timed out may have been delivered. Each recipient is therefore its own call,
  made once; a transport failure is reported as "unknown", never resent.
- **A refusal is not an error.** A recipient Moodle will not message (their preferences, a user
  that does not exist) comes back in an HTTP 200 answer with `msgid: -1` and Moodle's reason;
  only the whole service failing (messaging disabled, a missing capability) raises.
- **Empty is not always nothing.** `core_group_get_course_user_groups` for another user without
  `moodle/course:managegroups` answers an empty list with a warning: read the warnings.
- **A taken group name** is only `invalidparameter` ("Invalid parameter value detected"): the
  caller looks the name up among the course's groups first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from moodle_client.client import MoodleClient
from moodle_client.errors import MalformedResponseError, MoodleUnavailableError
from moodle_client.types import _Reader, expect_list

__all__ = [
    "CourseGroup",
    "MessageOutcome",
    "NoteOutcome",
    "add_group_members",
    "course_groups",
    "create_course_note",
    "create_group",
    "delete_group_members",
    "group_members",
    "send_message",
]


@dataclass(frozen=True)
class CourseGroup:
    id: int
    courseid: int
    name: str
    description: str


def _group(data: object) -> CourseGroup:
    r = _Reader(data, "course group")
    return CourseGroup(
        id=r.get_int("id"),
        courseid=r.get_int("courseid"),
        name=r.get_str("name"),
        description=r.get_str("description", ""),
    )


def course_groups(client: MoodleClient, courseid: int) -> list[CourseGroup]:
    """The course's groups (`core_group_get_course_groups`; needs moodle/course:managegroups)."""
    data = client.call("core_group_get_course_groups", {"courseid": courseid})
    return [_group(g) for g in expect_list(data, "core_group_get_course_groups")]


def group_members(client: MoodleClient, groupids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """Each group's member user ids, sorted (Moodle sends them unsorted)."""
    if not groupids:
        return {}
    data = client.call("core_group_get_group_members", {"groupids": list(groupids)})
    out: dict[int, tuple[int, ...]] = {}
    for entry in expect_list(data, "core_group_get_group_members"):
        r = _Reader(entry, "group members")
        ids = r.get_list("userids")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise MalformedResponseError("group members: userids are not all integers")
        out[r.get_int("groupid")] = tuple(sorted(ids))
    return out


def create_group(client: MoodleClient, courseid: int, name: str, description: str) -> CourseGroup:
    """Create a group. Moodle answers a name already taken with a bare `invalidparameter`:
    look among `course_groups` first (the caller does, to update rather than duplicate)."""
    data = client.call(
        "core_group_create_groups",
        {
            "groups": [
                {
                    "courseid": courseid,
                    "name": name,
                    "description": description,
                    "descriptionformat": 1,
                }
            ]
        },
    )
    [created] = expect_list(data, "core_group_create_groups") or [None]
    if created is None:
        raise MalformedResponseError("core_group_create_groups returned no group")
    return _group(created)


def _members(groupid: int, userids: Iterable[int]) -> list[dict[str, int]]:
    return [{"groupid": groupid, "userid": u} for u in sorted(set(userids))]


def add_group_members(client: MoodleClient, groupid: int, userids: Iterable[int]) -> None:
    """Add users to a group (the answer is the JSON literal null). Idempotent in Moodle."""
    members = _members(groupid, userids)
    if members:
        client.call("core_group_add_group_members", {"members": members})


def delete_group_members(client: MoodleClient, groupid: int, userids: Iterable[int]) -> None:
    members = _members(groupid, userids)
    if members:
        client.call("core_group_delete_group_members", {"members": members})


MessageStatus = Literal["sent", "refused", "unknown"]


@dataclass(frozen=True)
class MessageOutcome:
    """One recipient's result: `sent` (Moodle's message id), `refused` (Moodle's reason: their
    preferences, a user that does not exist), or `unknown` (no answer: it may have been
    delivered, so it is never resent automatically)."""

    userid: int
    status: MessageStatus
    msgid: int | None = None
    reason: str = ""


def send_message(
    client: MoodleClient, userid: int, html: str, *, clientmsgid: str = ""
) -> MessageOutcome:
    """Send one instant message to one user, in one call, never retried (see the module
    docstring). A failure of the whole service (messaging disabled, `nopermissions`) raises:
    it will fail for every recipient alike."""
    message: dict[str, object] = {"touserid": userid, "text": html, "textformat": 1}
    if clientmsgid:
        message["clientmsgid"] = clientmsgid
    try:
        data = client.call(
            "core_message_send_instant_messages", {"messages": [message]}, retry=False
        )
    except MoodleUnavailableError as exc:
        return MessageOutcome(userid, "unknown", reason=exc.message)
    [answer] = expect_list(data, "core_message_send_instant_messages") or [None]
    if answer is None:
        raise MalformedResponseError("core_message_send_instant_messages answered nothing")
    r = _Reader(answer, "sent message")
    msgid = r.get_int("msgid")
    if msgid > 0:
        return MessageOutcome(userid, "sent", msgid=msgid)
    return MessageOutcome(userid, "refused", reason=r.get_str("errormessage", ""))


@dataclass(frozen=True)
class NoteOutcome:
    noteid: int | None
    reason: str = ""


def create_course_note(
    client: MoodleClient, courseid: int, userid: int, text: str, *, clientnoteid: str
) -> NoteOutcome:
    """A course note about a student (`core_notes_create_notes`, publish state "course":
    teachers of the course see it in Moodle's notes). `clientnoteid` names it for the caller."""
    data = client.call(
        "core_notes_create_notes",
        {
            "notes": [
                {
                    "userid": userid,
                    "publishstate": "course",
                    "courseid": courseid,
                    "text": text,
                    "format": 1,
                    "clientnoteid": clientnoteid,
                }
            ]
        },
    )
    [answer] = expect_list(data, "core_notes_create_notes") or [None]
    if answer is None:
        raise MalformedResponseError("core_notes_create_notes answered nothing")
    r = _Reader(answer, "created note")
    noteid = r.get_int("noteid")
    if noteid > 0:
        return NoteOutcome(noteid)
    return NoteOutcome(None, reason=r.get_str("errormessage", ""))
