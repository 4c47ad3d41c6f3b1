"""The Moodle events the simulator writes, as templates, and standard-log rows built from them.

One template per event name: its ``logstore_standard_log`` columns, its English and French names
in the log report and its description pattern (from the recordings of a Moodle 5.1). The
generator (:mod:`simulation.course`) draws template codes, indices into :data:`TEMPLATES`, and
:func:`log_rows` turns them into rows by array lookups; the downloads
(:mod:`simulation.exports`) read the names and descriptions back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from ml.events import CONTEXT_COURSE, CONTEXT_MODULE, STANDARD_LOG_COLUMNS


@dataclass(frozen=True, slots=True)
class EventTemplate:
    eventname: str
    component: str
    action: str
    target: str
    objecttable: str | None
    crud: str
    edulevel: int
    module: bool  # context is the course module (else the course)
    en: str
    fr: str
    description: str  # {u} user, {c} course, {cm} cmid, {mod}, {o} objectid, {a} aux, {r} related
    related: bool = False
    # The description Moodle 4.1 to 5.0 wrote, where it differs from 5.1's (same placeholders).
    description_4x: str | None = None


_T = EventTemplate
TEMPLATES: Final[tuple[EventTemplate, ...]] = (
    _T(
        "\\core\\event\\course_viewed",
        "core",
        "viewed",
        "course",
        None,
        "r",
        2,
        False,
        "Course viewed",
        "Cours consulté",
        "The user with id '{u}' viewed the course with id '{c}'.",
    ),
    _T(
        "\\mod_page\\event\\course_module_viewed",
        "mod_page",
        "viewed",
        "course_module",
        "page",
        "r",
        2,
        True,
        "Course module viewed",
        "Module de cours consulté",
        "The user with id '{u}' viewed the '{mod}' activity with course module id '{cm}'.",
    ),
    _T(
        "\\mod_resource\\event\\course_module_viewed",
        "mod_resource",
        "viewed",
        "course_module",
        "resource",
        "r",
        2,
        True,
        "Course module viewed",
        "Module de cours consulté",
        "The user with id '{u}' viewed the '{mod}' activity with course module id '{cm}'.",
    ),
    _T(
        "\\mod_url\\event\\course_module_viewed",
        "mod_url",
        "viewed",
        "course_module",
        "url",
        "r",
        2,
        True,
        "Course module viewed",
        "Module de cours consulté",
        "The user with id '{u}' viewed the '{mod}' activity with course module id '{cm}'.",
    ),
    _T(
        "\\mod_forum\\event\\course_module_viewed",
        "mod_forum",
        "viewed",
        "course_module",
        "forum",
        "r",
        2,
        True,
        "Course module viewed",
        "Module de cours consulté",
        "The user with id '{u}' viewed the '{mod}' activity with course module id '{cm}'.",
    ),
    _T(
        "\\mod_forum\\event\\discussion_viewed",
        "mod_forum",
        "viewed",
        "discussion",
        "forum_discussions",
        "r",
        2,
        True,
        "Discussion viewed",
        "Discussion consultée",
        "The user with id '{u}' has viewed the discussion with id '{o}' in the forum with course "
        "module id '{cm}'.",
    ),
    _T(
        "\\mod_forum\\event\\post_created",
        "mod_forum",
        "created",
        "post",
        "forum_posts",
        "c",
        2,
        True,
        "Post created",
        "Message créé",
        "The user with id '{u}' has created the post with id '{o}' in the discussion with id "
        "'{a}' in the forum with course module id '{cm}'.",
    ),
    _T(
        "\\mod_quiz\\event\\course_module_viewed",
        "mod_quiz",
        "viewed",
        "course_module",
        "quiz",
        "r",
        2,
        True,
        "Course module viewed",
        "Module de cours consulté",
        "The user with id '{u}' viewed the '{mod}' activity with course module id '{cm}'.",
    ),
    _T(
        "\\mod_quiz\\event\\attempt_started",
        "mod_quiz",
        "started",
        "attempt",
        "quiz_attempts",
        "c",
        2,
        True,
        "Quiz attempt started",
        "Tentative de test commencée",
        "The user with id '{u}' has started the attempt with id '{o}' for the quiz with course "
        "module id '{cm}'.",
        related=True,
    ),
    _T(
        "\\mod_quiz\\event\\attempt_viewed",
        "mod_quiz",
        "viewed",
        "attempt",
        "quiz_attempts",
        "r",
        2,
        True,
        "Quiz attempt viewed",
        "Tentative de test consultée",
        "The user with id '{u}' has viewed page '{a}' of the attempt with id '{o}' belonging to "
        "the user with id '{r}' for the quiz with course module id '{cm}'.",
        related=True,
    ),
    _T(
        "\\mod_quiz\\event\\attempt_submitted",
        "mod_quiz",
        "submitted",
        "attempt",
        "quiz_attempts",
        "u",
        2,
        True,
        "Quiz attempt submitted",
        "Tentative de test envoyée",
        "The user with id '{u}' has submitted the attempt with id '{o}' for the quiz with course "
        "module id '{cm}'.",
        related=True,
    ),
    # Moodle 5.1's French pack has no string for this one yet: it stays English (see fixture).
    _T(
        "\\mod_quiz\\event\\attempt_graded",
        "mod_quiz",
        "graded",
        "attempt",
        "quiz_attempts",
        "u",
        0,
        True,
        "Quiz attempt graded",
        "Quiz attempt graded",
        "The attempt with id {o} for for quiz with course module id {cm} by user with id {u} had "
        "automatic grading performed.",
        related=True,
    ),
    _T(
        "\\mod_quiz\\event\\attempt_reviewed",
        "mod_quiz",
        "reviewed",
        "attempt",
        "quiz_attempts",
        "r",
        2,
        True,
        "Quiz attempt reviewed",
        "Tentative de test relue",
        "The user with id '{u}' has reviewed quiz attempt with id '{o}' by user with id '{r}' for "
        "the quiz with course module id '{cm}'.",
        related=True,
        description_4x="The user with id '{u}' has had their attempt with id '{o}' reviewed by the "
        "user with id '{r}' for the quiz with course module id '{cm}'.",
    ),
    _T(
        "\\mod_assign\\event\\course_module_viewed",
        "mod_assign",
        "viewed",
        "course_module",
        "assign",
        "r",
        2,
        True,
        "Course module viewed",
        "Module de cours consulté",
        "The user with id '{u}' viewed the '{mod}' activity with course module id '{cm}'.",
    ),
    _T(
        "\\mod_assign\\event\\submission_status_viewed",
        "mod_assign",
        "viewed",
        "submission_status",
        None,
        "r",
        0,
        True,
        "The status of the submission has been viewed.",
        "Statut du travail remis consulté",
        "The user with id '{u}' has viewed the submission status page for the assignment with "
        "course module id '{cm}'.",
    ),
    _T(
        "\\assignsubmission_onlinetext\\event\\submission_created",
        "assignsubmission_onlinetext",
        "created",
        "submission",
        "assignsubmission_onlinetext",
        "c",
        2,
        True,
        "Submission created.",
        "Travail de devoir créé",
        "The user with id '{u}' created an online text submission with '{a}' words in the "
        "assignment with course module id '{cm}'.",
        related=True,
    ),
    _T(
        "\\assignsubmission_onlinetext\\event\\assessable_uploaded",
        "assignsubmission_onlinetext",
        "uploaded",
        "assessable",
        "assign_submission",
        "c",
        2,
        True,
        "An online text has been uploaded.",
        "Texte en ligne déposé",
        "The user with id '{u}' has saved an online text submission with id '{o}' in the "
        "assignment activity with course module id '{cm}'.",
    ),
    # Not in the recorded fixture: English string from Moodle's lang/en; French is our best
    # reading of the language pack and may differ.
    _T(
        "\\assignsubmission_onlinetext\\event\\submission_updated",
        "assignsubmission_onlinetext",
        "updated",
        "submission",
        "assignsubmission_onlinetext",
        "u",
        2,
        True,
        "Submission updated.",
        "Travail de devoir modifié",
        "The user with id '{u}' updated an online text submission with '{a}' words in the "
        "assignment with course module id '{cm}'.",
        related=True,
    ),
    _T(
        "\\mod_assign\\event\\assessable_submitted",
        "mod_assign",
        "submitted",
        "assessable",
        "assign_submission",
        "u",
        2,
        True,
        "A submission has been submitted.",
        "Travail de devoir remis",
        "The user with id '{u}' has submitted the submission with id '{o}' for the assignment "
        "with course module id '{cm}'.",
    ),
    _T(
        "\\mod_assign\\event\\submission_graded",
        "mod_assign",
        "graded",
        "submission",
        "assign_grades",
        "u",
        1,
        True,
        "The submission has been graded.",
        "Travail de devoir évalué",
        "The user with id '{u}' has graded the submission '{o}' for the user with id '{r}' for "
        "the assignment with course module id '{cm}'.",
        related=True,
    ),
    _T(
        "\\gradereport_user\\event\\grade_report_viewed",
        "gradereport_user",
        "viewed",
        "grade_report",
        None,
        "r",
        0,
        False,
        "Grade user report viewed",
        "Rapport d'évaluation utilisateur consulté",
        "The user with id '{u}' viewed the user report in the gradebook.",
        related=True,
    ),
)
TEMPLATE_CODE: Final[dict[str, int]] = {t.eventname: i for i, t in enumerate(TEMPLATES)}


def log_rows(
    code: np.ndarray,
    time: np.ndarray,
    user: np.ndarray,
    rel: np.ndarray,
    cm: np.ndarray,
    obj: np.ndarray,
    aux: np.ndarray,
    *,
    courseid: int,
) -> pd.DataFrame:
    """Assemble standard-log rows from per-event template codes (lookups, no Python loops)."""

    def col(attr: str) -> np.ndarray:
        return np.asarray(np.array([getattr(t, attr) for t in TEMPLATES], dtype=object)[code])

    module = np.array([t.module for t in TEMPLATES])[code]
    course_ctx = 1000 + courseid * 1000
    n = code.size
    rel_out = pd.array(np.where(rel > 0, rel, 0), dtype="Int64")
    rel_out[rel <= 0] = pd.NA
    objectid = pd.array(obj, dtype="Int64")
    objectid[np.array([t.objecttable is None for t in TEMPLATES])[code]] = pd.NA
    log = pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "eventname": pd.Categorical(col("eventname")),
            "component": pd.Categorical(col("component")),
            "action": pd.Categorical(col("action")),
            "target": pd.Categorical(col("target")),
            "objecttable": pd.Categorical(col("objecttable")),
            "objectid": objectid,
            "crud": pd.Categorical(col("crud")),
            "edulevel": np.array([t.edulevel for t in TEMPLATES], dtype=np.int64)[code],
            "contextid": np.where(module, course_ctx + cm, course_ctx).astype(np.int64),
            "contextlevel": np.where(module, CONTEXT_MODULE, CONTEXT_COURSE).astype(np.int64),
            "contextinstanceid": np.where(module, cm, courseid).astype(np.int64),
            "userid": user.astype(np.int64),
            "relateduserid": rel_out,
            "courseid": np.full(n, courseid, dtype=np.int64),
            "timecreated": time.astype(np.int64),
            "origin": pd.Categorical(np.full(n, "web", dtype=object)),
        }
    )
    log.attrs["aux"] = aux  # words / page / discussion, for the log-report descriptions
    assert tuple(log.columns[1:]) == STANDARD_LOG_COLUMNS
    return log
