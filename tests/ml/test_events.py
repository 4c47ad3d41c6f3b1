"""The canonical event frame, the event-name mapping and its crud/edulevel fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import events as ev
from simulation.templates import TEMPLATES


def _log_rows(**overrides: object) -> pd.DataFrame:
    base: dict[str, object] = {
        "id": [1, 2, 3, 4],
        "eventname": [
            "\\core\\event\\course_viewed",
            "\\mod_page\\event\\course_module_viewed",
            "\\core\\event\\user_graded",
            "\\mod_forum\\event\\post_created",
        ],
        "component": ["core", "mod_page", "core", "mod_forum"],
        "action": ["viewed", "viewed", "graded", "created"],
        "target": ["course", "course_module", "user", "post"],
        "objecttable": [None, "page", "grade_grades", "forum_posts"],
        "objectid": [None, 1, 95, 44],
        "crud": ["r", "r", "u", "c"],
        "edulevel": [2, 2, 0, 2],
        "contextid": [20, 31, 20, 34],
        "contextlevel": [50, 70, 50, 70],
        "contextinstanceid": [2, 1, 2, 4],
        "userid": [4, 5, -1, 6],
        "relateduserid": [None, 0, 22, None],
        "courseid": [2, 2, 2, 3],
        "timecreated": [1792577989, 1792577990, 1792577991, 1792577992],
        "origin": ["web", "web", "cli", "web"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_standard_log_rows_become_canonical_events() -> None:
    canon = ev.from_standard_log(_log_rows())
    assert list(canon.columns) == list(ev.CANONICAL_COLUMNS)
    # the cron's user_graded (userid -1) is not learner behaviour
    assert canon["userid"].tolist() == [4, 5, 6]
    assert str(canon["time"].dt.tz) == "UTC"
    assert canon["time"].iloc[0] == pd.Timestamp(1792577989, unit="s", tz="UTC")
    # course-module id only when the context is a module
    assert canon["cmid"].isna().tolist() == [True, False, False]
    assert canon["cmid"].iloc[1] == 1
    # relateduserid 0 means "none" in Moodle
    assert canon["relateduserid"].isna().all()
    assert canon["edulevel"].dtype == np.int8


def test_rows_of_other_courses_are_dropped_when_asked() -> None:
    canon = ev.from_standard_log(_log_rows(), courseid=2)
    assert canon["userid"].tolist() == [4, 5]


def test_rows_are_ordered_by_time_then_id() -> None:
    rows = _log_rows(id=[4, 3, 2, 1], timecreated=[10, 10, 5, 5], userid=[1, 2, 3, 4])
    assert ev.from_standard_log(rows)["userid"].tolist() == [4, 3, 2, 1]


def test_missing_columns_are_refused() -> None:
    # Every column the conversion reads is required; Moodle's others (origin, ip…) are not.
    for column in ev.READ_LOG_COLUMNS:
        with pytest.raises(ValueError, match=column):
            ev.from_standard_log(_log_rows().drop(columns=[column]))
    assert len(ev.from_standard_log(_log_rows().drop(columns=["origin"]))) == len(
        ev.from_standard_log(_log_rows())
    )


def test_naive_times_are_refused() -> None:
    frame = pd.DataFrame(
        {
            "userid": [1],
            "time": [pd.Timestamp("2026-01-01 10:00")],
            "eventname": ["x"],
            "component": ["core"],
            "crud": ["r"],
            "edulevel": [2],
        }
    )
    with pytest.raises(ValueError, match="timezone"):
        ev.canonicalize(frame)


@pytest.mark.parametrize(
    ("name", "active", "depth", "social", "category"),
    [
        ("\\mod_page\\event\\course_module_viewed", False, 1, 0, "content"),
        ("\\mod_quiz\\event\\attempt_submitted", True, 2, 0, "assessment"),
        ("\\mod_quiz\\event\\attempt_reviewed", False, 3, 0, "feedback"),
        ("\\mod_forum\\event\\post_created", True, 4, 3, "forum_write"),
        ("\\assignsubmission_onlinetext\\event\\submission_updated", True, 5, 0, "assessment"),
        ("\\mod_forum\\event\\discussion_viewed", False, 1, 1, "forum_read"),
    ],
)
def test_known_events_are_mapped(
    name: str, active: bool, depth: int, social: int, category: str
) -> None:
    info = ev.event_info(name)
    assert (info.active, info.depth, info.social, info.category) == (
        active,
        depth,
        social,
        category,
    )


@pytest.mark.parametrize(
    ("crud", "edulevel", "active", "depth"),
    [
        ("r", 2, False, 1),
        ("c", 2, True, 2),
        ("u", 2, True, 2),
        ("c", 1, False, 0),
        ("r", 0, False, 0),
    ],
)
def test_unknown_events_fall_back_on_crud_and_edulevel(
    crud: str, edulevel: int, active: bool, depth: int
) -> None:
    info = ev.event_info("\\mod_unknown\\event\\something_done", crud, edulevel)
    assert (info.active, info.depth, info.category) == (active, depth, "other")


def test_annotate_matches_event_info_row_by_row() -> None:
    frame = pd.DataFrame(
        {
            "eventname": ["\\mod_forum\\event\\post_created", "\\x\\event\\y", "\\x\\event\\y"],
            "crud": ["c", "c", "r"],
            "edulevel": [2, 2, 2],
        }
    )
    ann = ev.annotate(frame)
    assert ann["active"].tolist() == [True, True, False]
    assert ann["depth"].tolist() == [4, 2, 1]
    assert ann["category"].tolist() == ["forum_write", "other", "other"]


def test_simulated_events_carry_moodles_crud_and_edulevel() -> None:
    """The simulator and the mapping agree on every event the simulator writes."""
    for t in TEMPLATES:
        info = ev.EVENT_INFO[t.eventname]
        assert (t.crud, t.edulevel) == (info.crud, info.edulevel), t.eventname


def test_short_event_name() -> None:
    assert (
        ev.short_event_name("\\mod_quiz\\event\\attempt_submitted") == "mod_quiz_attempt_submitted"
    )


def test_event_kinds_map_each_distinct_triple_once() -> None:
    frame = pd.DataFrame(
        {
            "eventname": pd.Categorical(
                ["\\mod_forum\\event\\post_created", None, "\\x\\event\\y", "\\x\\event\\y"]
            ),
            "crud": pd.Categorical(["c", "r", None, "c"]),
            "edulevel": np.array([2, 2, 2, 7], dtype=np.int8),  # 7: clipped to 3 (not 2)
        }
    )
    codes, names, infos = ev.event_kinds(frame)
    assert len(set(codes.tolist())) == len(names) == len(infos) == 4
    by_row = [(names[c], infos[c]) for c in codes]
    assert by_row[0] == ("\\mod_forum\\event\\post_created", ev.EVENT_INFO[by_row[0][0]])
    # a missing name is an unknown one: a participating read is a passive view
    assert by_row[1][0] == ""
    assert (by_row[1][1].active, by_row[1][1].depth) == (False, 1)
    # a missing crud is not a read: participating work
    assert (by_row[2][1].active, by_row[2][1].depth) == (True, 2)
    # edulevel 3 is not participating: neither active nor a level
    assert (by_row[3][1].active, by_row[3][1].depth) == (False, 0)
    # the same triple on two rows is one kind
    again, _, _ = ev.event_kinds(pd.concat([frame, frame], ignore_index=True))
    assert again[:4].tolist() == again[4:].tolist()
