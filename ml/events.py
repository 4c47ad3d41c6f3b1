"""The canonical event frame and what each Moodle event means for learning analytics.

Every log source (the companion plugin's web service, the read-only SQL source, the log-report CSV)
ends as one canonical frame, so features never care where events came from. The frame keeps only
what the features need, with fixed dtypes:

========================  ===========================  =========================================
column                    dtype                        meaning
========================  ===========================  =========================================
``userid``                int64                        the acting user (Moodle ``userid``)
``time``                  datetime64[ns, UTC]          when it happened (``timecreated``)
``eventname``             category                     e.g. ``\\core\\event\\course_viewed``
``component``             category                     e.g. ``core``, ``mod_quiz``
``crud``                  category (c/r/u/d)           Moodle's create/read/update/delete flag
``edulevel``              int8                         0 other, 1 teaching, 2 participating
``contextlevel``          int16                        10 system, 30 user, 50 course, 70 module
``contextinstanceid``     int64                        course id at 50, course-module id at 70
``cmid``                  Int64 (nullable)             course-module id, when the context is one
``relateduserid``         Int64 (nullable)             the user the event is about, if any
========================  ===========================  =========================================

The mapping of event names to categories follows Moodle's own analytics where it has one:

* **passive vs active**: reading (views) is passive; creating, updating, submitting and posting
  are active.
* **cognitive depth** (Moodle Analytics "Cognitive depth" indicator, core_analytics
  ``community_of_inquiry_activity``): 0 none, 1 view, 2 submit, 3 view feedback, 4 interact
  (comment on or discuss feedback, reply to others), 5 revise (resubmit after feedback).
* **social breadth** (the same family's "Social breadth" indicator, condensed): 0 individual work,
  1 read others' contributions, 2 contribute to a shared space, 3 reply to or message others.

Event names we do not know fall back on ``crud`` and ``edulevel``: a participating (edulevel 2)
read is a passive view (depth 1); a participating create/update/delete is active work (depth 2);
teaching (1) and other (0) events are neither, because they are not the learner's own learning
activity (grading, automatic completion, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

CANONICAL_COLUMNS: Final = (
    "userid",
    "time",
    "eventname",
    "component",
    "crud",
    "edulevel",
    "contextlevel",
    "contextinstanceid",
    "cmid",
    "relateduserid",
)

STANDARD_LOG_COLUMNS: Final = (
    "eventname",
    "component",
    "action",
    "target",
    "objecttable",
    "objectid",
    "crud",
    "edulevel",
    "contextid",
    "contextlevel",
    "contextinstanceid",
    "userid",
    "relateduserid",
    "courseid",
    "timecreated",
    "origin",
)
"""Columns of Moodle's ``logstore_standard_log`` that the converter reads (``id`` is optional)."""

CONTEXT_SYSTEM: Final = 10
CONTEXT_USER: Final = 30
CONTEXT_COURSE: Final = 50
CONTEXT_MODULE: Final = 70

EDULEVEL_OTHER: Final = 0
EDULEVEL_TEACHING: Final = 1
EDULEVEL_PARTICIPATING: Final = 2

CATEGORIES: Final = (
    "navigation",  # course page, dashboards
    "content",  # reading resources, pages, urls, books, folders, external tools
    "assessment",  # quizzes and assignments: views, attempts, submissions
    "feedback",  # grades and feedback seen by the learner
    "forum_read",
    "forum_write",
    "collaboration",  # wiki, glossary, messages, choice, feedback surveys
    "other",  # everything else, incl. unknown names and system side effects
)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What one Moodle event name tells about learning, and how Moodle defines it.

    ``crud`` and ``edulevel`` are Moodle's own values for the event class (from its PHP source),
    which the simulator writes and the fallback reads.
    """

    category: str
    active: bool
    depth: int
    social: int
    crud: str
    edulevel: int


def _i(category: str, active: bool, depth: int, social: int, crud: str, edulevel: int) -> EventInfo:
    return EventInfo(category, active, depth, social, crud, edulevel)


P = EDULEVEL_PARTICIPATING
O = EDULEVEL_OTHER  # noqa: E741 - mirrors Moodle's LEVEL_OTHER
T = EDULEVEL_TEACHING

EVENT_INFO: Final[dict[str, EventInfo]] = {
    # navigation
    "\\core\\event\\course_viewed": _i("navigation", False, 1, 0, "r", P),
    "\\core\\event\\course_resources_list_viewed": _i("navigation", False, 1, 0, "r", P),
    "\\core\\event\\dashboard_viewed": _i("navigation", False, 0, 0, "r", O),
    "\\core\\event\\user_list_viewed": _i("navigation", False, 1, 1, "r", P),
    "\\core\\event\\user_profile_viewed": _i("navigation", False, 1, 1, "r", P),
    # content
    "\\mod_resource\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_page\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_url\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_folder\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_book\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_book\\event\\chapter_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_lti\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_h5pactivity\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_h5pactivity\\event\\statement_received": _i("assessment", True, 2, 0, "c", P),
    "\\mod_lesson\\event\\course_module_viewed": _i("content", False, 1, 0, "r", P),
    "\\mod_lesson\\event\\question_answered": _i("assessment", True, 2, 0, "c", P),
    "\\mod_scorm\\event\\sco_launched": _i("content", False, 1, 0, "r", P),
    # quizzes
    "\\mod_quiz\\event\\course_module_viewed": _i("assessment", False, 1, 0, "r", P),
    "\\mod_quiz\\event\\attempt_started": _i("assessment", True, 2, 0, "c", P),
    "\\mod_quiz\\event\\attempt_viewed": _i("assessment", False, 2, 0, "r", P),
    "\\mod_quiz\\event\\attempt_summary_viewed": _i("assessment", False, 2, 0, "r", P),
    "\\mod_quiz\\event\\attempt_updated": _i("assessment", True, 2, 0, "u", P),
    "\\mod_quiz\\event\\attempt_submitted": _i("assessment", True, 2, 0, "u", P),
    "\\mod_quiz\\event\\attempt_reviewed": _i("feedback", False, 3, 0, "r", P),
    "\\mod_quiz\\event\\attempt_graded": _i("other", False, 0, 0, "u", O),
    # assignments
    "\\mod_assign\\event\\course_module_viewed": _i("assessment", False, 1, 0, "r", P),
    "\\mod_assign\\event\\submission_status_viewed": _i("assessment", False, 1, 0, "r", O),
    "\\mod_assign\\event\\submission_form_viewed": _i("assessment", False, 2, 0, "r", O),
    "\\mod_assign\\event\\assessable_submitted": _i("assessment", True, 2, 0, "u", P),
    "\\mod_assign\\event\\feedback_viewed": _i("feedback", False, 3, 0, "r", O),
    "\\mod_assign\\event\\submission_graded": _i("other", False, 0, 0, "u", T),
    "\\assignsubmission_onlinetext\\event\\submission_created": _i(
        "assessment", True, 2, 0, "c", P
    ),
    "\\assignsubmission_onlinetext\\event\\submission_updated": _i(
        "assessment", True, 5, 0, "u", P
    ),
    "\\assignsubmission_onlinetext\\event\\assessable_uploaded": _i(
        "assessment", True, 2, 0, "c", P
    ),
    "\\assignsubmission_file\\event\\submission_created": _i("assessment", True, 2, 0, "c", P),
    "\\assignsubmission_file\\event\\submission_updated": _i("assessment", True, 5, 0, "u", P),
    "\\assignsubmission_file\\event\\assessable_uploaded": _i("assessment", True, 2, 0, "c", P),
    "\\assignsubmission_comments\\event\\comment_created": _i("feedback", True, 4, 3, "c", P),
    # grades and feedback
    "\\gradereport_user\\event\\grade_report_viewed": _i("feedback", False, 3, 0, "r", O),
    "\\gradereport_overview\\event\\grade_report_viewed": _i("feedback", False, 3, 0, "r", O),
    "\\core\\event\\user_graded": _i("other", False, 0, 0, "u", O),
    "\\core\\event\\course_module_completion_updated": _i("other", False, 0, 0, "u", O),
    # forums
    "\\mod_forum\\event\\course_module_viewed": _i("forum_read", False, 1, 1, "r", P),
    "\\mod_forum\\event\\discussion_viewed": _i("forum_read", False, 1, 1, "r", P),
    "\\mod_forum\\event\\discussion_created": _i("forum_write", True, 4, 2, "c", P),
    "\\mod_forum\\event\\post_created": _i("forum_write", True, 4, 3, "c", P),
    "\\mod_forum\\event\\post_updated": _i("forum_write", True, 5, 2, "u", P),
    "\\mod_forum\\event\\assessable_uploaded": _i("forum_write", True, 4, 2, "c", P),
    "\\mod_forum\\event\\discussion_subscription_created": _i("forum_read", True, 1, 1, "c", P),
    # collaboration and communication
    "\\core\\event\\message_sent": _i("collaboration", True, 4, 3, "c", O),
    "\\mod_wiki\\event\\page_viewed": _i("collaboration", False, 1, 1, "r", P),
    "\\mod_wiki\\event\\page_updated": _i("collaboration", True, 5, 2, "u", P),
    "\\mod_glossary\\event\\entry_created": _i("collaboration", True, 2, 2, "c", P),
    "\\mod_choice\\event\\answer_created": _i("collaboration", True, 2, 1, "c", P),
    "\\mod_feedback\\event\\response_submitted": _i("collaboration", True, 2, 0, "c", P),
}
"""Known event names. Teacher-side and administrative events are left to the fallback."""

DEFAULT_EVENT_TYPES: Final = (
    "\\core\\event\\course_viewed",
    "\\mod_resource\\event\\course_module_viewed",
    "\\mod_page\\event\\course_module_viewed",
    "\\mod_url\\event\\course_module_viewed",
    "\\mod_quiz\\event\\course_module_viewed",
    "\\mod_quiz\\event\\attempt_started",
    "\\mod_quiz\\event\\attempt_submitted",
    "\\mod_quiz\\event\\attempt_reviewed",
    "\\mod_assign\\event\\course_module_viewed",
    "\\mod_assign\\event\\assessable_submitted",
    "\\mod_forum\\event\\discussion_viewed",
    "\\mod_forum\\event\\post_created",
    "\\gradereport_user\\event\\grade_report_viewed",
)
"""The fixed "top event types" counted one by one. Fixed, not learned from the data, so that a
model trained on past offerings sees the same columns as the current one."""


def short_event_name(eventname: str) -> str:
    r"""``\mod_quiz\event\attempt_submitted`` -> ``mod_quiz_attempt_submitted`` (column-safe)."""
    parts = [p for p in eventname.split("\\") if p and p != "event"]
    return "_".join(parts)


def event_info(
    eventname: str, crud: str = "r", edulevel: int = EDULEVEL_PARTICIPATING
) -> EventInfo:
    """The known meaning of ``eventname``, else the documented ``crud``/``edulevel`` fallback."""
    known = EVENT_INFO.get(eventname)
    if known is not None:
        return known
    if edulevel != EDULEVEL_PARTICIPATING:
        return EventInfo("other", False, 0, 0, crud, edulevel)
    if crud == "r":
        return EventInfo("other", False, 1, 0, crud, edulevel)
    return EventInfo("other", True, 2, 0, crud, edulevel)


def event_kinds(events: pd.DataFrame) -> tuple[np.ndarray, list[str], list[EventInfo]]:
    """Each row's kind (an ``int32`` code per distinct (eventname, crud, edulevel) triple), and
    per kind its event name and :class:`EventInfo`, so a caller maps ten million rows with one
    lookup per kind.

    The key is built densely from the categorical codes (name x crud x edulevel) and the kinds
    present are found with one ``bincount`` over that small key space: no hashing or sorting of
    the rows, which is what makes this cheap. A missing event name reads as an unknown one
    (the ``crud``/``edulevel`` fallback); a missing ``crud`` as ``""`` (not a read).
    """
    name = events["eventname"].astype("category")
    crud = events["crud"].astype("category")
    names = [str(c) for c in name.cat.categories]
    cruds = [str(c) for c in crud.cat.categories]
    n_crud = len(cruds) + 1
    space = (len(names) + 1) * n_crud * 4
    # codes are -1 for missing values: shift by one so that every key is >= 0
    key: np.ndarray = name.cat.codes.to_numpy().astype(np.int32 if space < 2**31 else np.int64)
    key += 1
    key *= n_crud
    key += crud.cat.codes.to_numpy()
    key += 1
    key *= 4
    key += np.clip(events["edulevel"].to_numpy(), 0, 3).astype(np.int8)
    if space <= 4 * key.size + 65_536:
        present = np.flatnonzero(np.bincount(key, minlength=space))
        remap = np.zeros(space, dtype=np.int32)
        remap[present] = np.arange(present.size, dtype=np.int32)
        codes = remap[key]
    else:  # absurdly many categories for the rows: sort the keys instead
        present, inverse = np.unique(key, return_inverse=True)
        codes = inverse.astype(np.int32)
    kind_names, infos = [], []
    for k in present.tolist():
        rest, edulevel = divmod(k, 4)
        name_code, crud_code = divmod(rest, n_crud)
        kind_name = names[name_code - 1] if name_code else ""
        crud_value = cruds[crud_code - 1] if crud_code else ""
        kind_names.append(kind_name)
        infos.append(event_info(kind_name, crud_value, edulevel))
    return codes, kind_names, infos


def annotate(events: pd.DataFrame) -> pd.DataFrame:
    """Per-event ``category`` (categorical), ``active`` (bool), ``depth`` and ``social`` (int8).

    Vectorised: the mapping is looked up once per kind (:func:`event_kinds`), then broadcast
    back with the integer codes.
    """
    codes, _, infos = event_kinds(events)
    cat_lookup = np.array([CATEGORIES.index(i.category) for i in infos], dtype=np.int8)
    out = pd.DataFrame(index=events.index)
    out["category"] = pd.Categorical.from_codes(
        cat_lookup[codes] if infos else np.zeros(0, np.int8), categories=pd.Index(CATEGORIES)
    )
    out["active"] = np.array([i.active for i in infos], dtype=bool)[codes]
    out["depth"] = np.array([i.depth for i in infos], dtype=np.int8)[codes]
    out["social"] = np.array([i.social for i in infos], dtype=np.int8)[codes]
    return out


def empty_events() -> pd.DataFrame:
    """A canonical frame with no rows, with the right dtypes (for students without history)."""
    return canonicalize(
        pd.DataFrame(
            {
                "userid": np.zeros(0, np.int64),
                "time": pd.to_datetime(np.zeros(0, np.int64), unit="s", utc=True),
                "eventname": pd.Series([], dtype=str),
                "component": pd.Series([], dtype=str),
                "crud": pd.Series([], dtype=str),
                "edulevel": np.zeros(0, np.int64),
                "contextlevel": np.zeros(0, np.int64),
                "contextinstanceid": np.zeros(0, np.int64),
            }
        )
    )


def canonicalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce a frame that has the canonical columns to the canonical dtypes and column order.

    ``cmid`` is derived from the context when missing; ``relateduserid`` defaults to null.
    Naive times are refused: a missing timezone is a bug in the source, not something to guess.
    """
    missing = {"userid", "time", "eventname", "component", "crud", "edulevel"} - set(frame.columns)
    if missing:
        raise ValueError(f"event frame lacks columns: {sorted(missing)}")
    time = pd.Series(pd.to_datetime(frame["time"]), index=frame.index)
    if getattr(time.dt, "tz", None) is None:
        raise ValueError("event times must be timezone-aware (UTC)")
    out = pd.DataFrame(
        {
            "userid": frame["userid"].to_numpy(dtype=np.int64),
            "time": time.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"),
            "eventname": frame["eventname"].astype("category"),
            "component": frame["component"].astype("category"),
            "crud": frame["crud"].astype("category"),
            "edulevel": frame["edulevel"].to_numpy(dtype=np.int8),
        },
        index=frame.index,
    )
    ctxlevel = frame.get("contextlevel", CONTEXT_COURSE)
    out["contextlevel"] = pd.Series(ctxlevel, index=frame.index).to_numpy(dtype=np.int16)
    ctxinst = frame.get("contextinstanceid", 0)
    out["contextinstanceid"] = pd.Series(ctxinst, index=frame.index).to_numpy(dtype=np.int64)
    if "cmid" in frame:
        out["cmid"] = frame["cmid"].astype("Int64")
    else:
        out["cmid"] = pd.array(
            np.where(out["contextlevel"] == CONTEXT_MODULE, out["contextinstanceid"], 0),
            dtype="Int64",
        )
        out.loc[out["contextlevel"] != CONTEXT_MODULE, "cmid"] = pd.NA
    if "relateduserid" in frame:
        out["relateduserid"] = frame["relateduserid"].astype("Int64")
    else:
        out["relateduserid"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return out.reset_index(drop=True)


#: The standard-log columns `from_standard_log` reads (the others are Moodle's, kept by sync).
READ_LOG_COLUMNS: Final = (
    "userid",
    "relateduserid",
    "courseid",
    "timecreated",
    "eventname",
    "component",
    "crud",
    "edulevel",
    "contextlevel",
    "contextinstanceid",
)


def from_standard_log(rows: pd.DataFrame, *, courseid: int | None = None) -> pd.DataFrame:
    """Moodle ``logstore_standard_log`` rows (web service or SQL) -> the canonical event frame.

    ``timecreated`` is Unix seconds. Rows of other courses are dropped when ``courseid`` is given
    (the DB source may read a shared table). Anonymous and system rows (``userid`` <= 0, e.g. the
    cron's ``user_graded`` with userid -1) carry no learner behaviour and are dropped.
    """
    missing = set(READ_LOG_COLUMNS) - set(rows.columns)
    if missing:
        raise ValueError(f"standard log rows lack columns: {sorted(missing)}")
    frame = rows
    if courseid is not None:
        frame = frame[frame["courseid"].to_numpy() == courseid]
    userid = pd.to_numeric(frame["userid"]).fillna(0).to_numpy(dtype=np.int64)
    frame = frame[userid > 0]
    if "id" in frame:
        # Moodle's id is the insertion order; keep it as the tie-break for equal timestamps.
        frame = frame.sort_values(["timecreated", "id"], kind="stable")
    else:
        frame = frame.sort_values("timecreated", kind="stable")
    ctxlevel = frame["contextlevel"].to_numpy(dtype=np.int64)
    ctxinst = frame["contextinstanceid"].to_numpy(dtype=np.int64)
    cmid = pd.array(np.where(ctxlevel == CONTEXT_MODULE, ctxinst, 0), dtype="Int64")
    cmid[ctxlevel != CONTEXT_MODULE] = pd.NA
    related = pd.to_numeric(frame["relateduserid"], errors="coerce").astype("Int64")
    related = related.where(related.fillna(0) > 0)
    canon = pd.DataFrame(
        {
            "userid": frame["userid"].to_numpy(dtype=np.int64),
            "time": pd.to_datetime(
                frame["timecreated"].to_numpy(dtype=np.int64), unit="s", utc=True
            ),
            # .array keeps a categorical source categorical: no re-hashing of millions of names
            "eventname": frame["eventname"].array,
            "component": frame["component"].array,
            "crud": frame["crud"].array,
            "edulevel": frame["edulevel"].to_numpy(dtype=np.int64),
            "contextlevel": ctxlevel,
            "contextinstanceid": ctxinst,
            "cmid": cmid,
            "relateduserid": related.to_numpy(),
        }
    )
    return canonicalize(canon)
