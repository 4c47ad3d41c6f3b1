"""A seeded, vectorised simulator of Moodle courses, for the demo, the tests and the benchmarks.

Why a package of its own (``simulation``) and not in ``ml`` or the test tree: the demo and the
benchmarks need it too, so it ships with the tool, but it is a data generator, not part of the
model; ``ml`` may not import it (import-linter holds both directions). It only needs numpy,
pandas and ``ml``'s event schema. It writes exactly the shapes a real Moodle 5.1 produces
(checked against the recordings in ``tests/fixtures``/``shared/fixtures/moodle-5.1``):
``logstore_standard_log`` rows here, as the companion plugin's web service and the DB source
give them (``id`` + :data:`ml.events.STANDARD_LOG_COLUMNS`); the downloads and web-service
answers built from them in :mod:`simulation.exports`.

**The generative story.** Each student has latent traits: *ability*, *engagement* (correlated
with ability), *regularity*, *procrastination*, *sociality* and a *dropout* time. Work happens
in sessions: each week a student opens a Poisson number of sessions (more when engaged, spread
unevenly when irregular, bunched before deadlines when procrastinating, none after dropping out),
on weekday/hour rhythms (mornings, afternoons, evenings; few nights; quieter weekends). A session
starts with the course page and continues with a geometric number of actions a few seconds to a
few minutes apart, drawn from the student's own mix of reading, forum and assessment pages.
Quizzes and assignments are structured: started/viewed/submitted/graded/reviewed, or
viewed/drafted/uploaded/submitted (and sometimes revised), at a time before the deadline set by
procrastination. Final grades combine quiz scores (30%), assignment marks (30%) and a final exam
(40%, entered outside the activity grade items, as ARCHE courses often do), all driven by ability
and effort, plus noise; ``signal`` scales how much the traits tell about the grade. A student
with nothing graded and no exam (an early dropout) has no course total, like Moodle's ``-``.

Everything is drawn with one ``numpy.random.Generator`` per offering, seeded from ``seed`` and
the offering's index, with array operations only, so ten million events take seconds and the same
seed always gives the same course.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from ml.dataset import Offering
from ml.events import CONTEXT_COURSE, CONTEXT_MODULE, STANDARD_LOG_COLUMNS, from_standard_log

DAY: Final = 86_400
WEEK: Final = 7 * DAY


@dataclass(frozen=True, slots=True)
class Activity:
    """One course module. ``due`` is the deadline in days after the course start, if any."""

    cmid: int
    modname: str
    instance: int
    name: str
    opens_week: int
    due: float | None = None
    itemid: int | None = None


def default_activities(n_weeks: int = 12) -> tuple[Activity, ...]:
    """A typical ARCHE course: a forum, a page and a file each week, a link every third week,
    a quiz every other week and an assignment every third week, due on Sunday evenings."""
    acts: list[Activity] = [Activity(1, "forum", 1, "Forum de discussion", 0)]
    cmid, item = 2, 2
    counts = {"page": 0, "resource": 0, "url": 0, "quiz": 0, "assign": 0}

    def add(mod: str, name: str, week: int, due: float | None = None) -> None:
        nonlocal cmid, item
        counts[mod] += 1
        graded = mod in ("quiz", "assign")
        acts.append(Activity(cmid, mod, counts[mod], name, week, due, item if graded else None))
        cmid += 1
        item += int(graded)

    for w in range(n_weeks):
        add("page", f"Cours {w + 1}", w)
        add("resource", f"Diapositives semaine {w + 1}", w)
        if w % 3 == 1:
            add("url", f"Lien complementaire {w // 3 + 1}", w)
        if w % 2 == 1:
            add("quiz", f"Quiz {w // 2 + 1}", w, (w + 1) * 7 - 0.1)
        if w % 3 == 2:
            add("assign", f"TP{w // 3 + 1}", w, (w + 1) * 7 - 0.1)
    return tuple(acts)


@dataclass(frozen=True, slots=True)
class CourseSpec:
    """The course every offering repeats. One Moodle course per offering, as at ARCHE."""

    shortname: str = "ALGO101"
    fullname: str = "Algorithmique 1"
    n_weeks: int = 12
    grademax: float = 100.0
    activities: tuple[Activity, ...] = field(default_factory=default_activities)
    first_start: pd.Timestamp = field(
        default_factory=lambda: pd.Timestamp("2020-09-07 00:00", tz="Europe/Paris")
    )
    timezone: str = "Europe/Paris"
    """Where students live: session hours are local wall-clock hours (daylight-saving shifts
    inside a course are ignored, an hour's drift the features do not care about)."""


# ------------------------------------------------------------------ event templates
@dataclass(frozen=True, slots=True)
class _Template:
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


_T = _Template
TEMPLATES: Final[tuple[_Template, ...]] = (
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
_CODE: Final = {t.eventname: i for i, t in enumerate(TEMPLATES)}

_FIRST = (
    "Amine", "Alice", "Yanis", "Jade", "Lucas", "Camille", "Noah", "Louis", "Ilyes", "Maya",
    "Sofiane", "Emma", "Hugo", "Chloe", "Nathan", "Lea", "Adam", "Ines", "Theo", "Manon",
    "Rayan", "Sarah", "Jules", "Lina", "Gabriel", "Zoe", "Arthur", "Nour", "Paul", "Eva",
)  # fmt: skip
_LAST = (
    "Benali", "Andre", "Bernard", "Bertrand", "Leroy", "Girard", "Dubois", "Francois", "David",
    "Henry", "Mercier", "Martin", "Petit", "Durand", "Moreau", "Laurent", "Simon", "Michel",
    "Garcia", "Roux", "Fournier", "Morel", "Fontaine", "Chevalier", "Robin", "Masson", "Blanc",
    "Guerin", "Muller", "Faure",
)  # fmt: skip


# ------------------------------------------------------------------ simulated data
@dataclass(frozen=True, slots=True)
class SimulatedOffering:
    """One Moodle course (one yearly offering). ``grades`` is empty for the running one.

    ``log`` holds standard-log rows; ``users`` the enrolled users (students and one teacher);
    ``grades`` one row per student: ``userid``, one column per graded item id (raw points, NaN
    when ungraded) and ``course_total`` (NaN when Moodle would show ``-``).
    """

    index: int
    courseid: int
    start: pd.Timestamp
    end: pd.Timestamp
    now: pd.Timestamp | None
    users: pd.DataFrame
    log: pd.DataFrame
    grades: pd.DataFrame
    traits: pd.DataFrame
    spec: CourseSpec

    @property
    def is_current(self) -> bool:
        return self.now is not None

    @property
    def roster(self) -> pd.DataFrame:
        """Students only, as ``core_enrol_get_enrolled_users`` filtered on the student role."""
        return self.users.loc[self.users["role"] == "student"].reset_index(drop=True)

    def to_offering(self) -> Offering:
        """The offering as training and scoring see it: canonical events from the log rows."""
        grades = self.grades.set_index("userid")["course_total"]
        return Offering(
            offering_id=f"{self.spec.shortname}-{self.start.year}",
            events=from_standard_log(self.log, courseid=self.courseid),
            roster=self.roster,
            course_start=self.start,
            course_end=self.end,
            grades=grades,
            grade_min=0.0,
            grade_max=self.spec.grademax,
            course_modules=[a.cmid for a in self.spec.activities],
        )


@dataclass(frozen=True, slots=True)
class SimulatedCourse:
    spec: CourseSpec
    offerings: tuple[SimulatedOffering, ...]

    @property
    def past(self) -> tuple[SimulatedOffering, ...]:
        return tuple(o for o in self.offerings if not o.is_current)

    @property
    def current(self) -> SimulatedOffering | None:
        return next((o for o in self.offerings if o.is_current), None)


def simulate_course(
    n_past: int = 6,
    n_students: int = 60,
    *,
    seed: int = 0,
    current_progress: float | None = 0.5,
    signal: float = 1.0,
    activity: float = 1.0,
    spec: CourseSpec | None = None,
) -> SimulatedCourse:
    """Several past offerings with final grades, plus (unless ``current_progress`` is None) one
    offering in progress whose log stops at that fraction of the course.

    ``activity`` scales the number of sessions (about 300 events per student at 1.0), so that
    benchmarks reach ten million events with a realistic cohort. ``signal`` in [0, 1] scales how
    much latent traits drive grades (0: grades are pure noise).
    """
    spec = spec or CourseSpec()
    offerings = []
    next_user = 100
    next_logid = 1
    n_total = n_past + (0 if current_progress is None else 1)
    for k in range(n_total):
        rng = np.random.default_rng([seed, k])
        local = spec.first_start.tz_convert(spec.timezone) + pd.DateOffset(years=k)
        local = local.normalize() - pd.Timedelta(days=local.weekday())  # a Monday, midnight
        start = local.tz_convert("UTC")
        is_current = current_progress is not None and k == n_total - 1
        size = int(rng.integers(int(n_students * 0.85), int(n_students * 1.15) + 1))
        off = _simulate_offering(
            rng,
            spec,
            index=k,
            courseid=100 + k,
            start=pd.Timestamp(start),
            n_students=max(size, 2),
            first_userid=next_user,
            progress=current_progress if is_current else None,
            signal=signal,
            activity=activity,
        )
        next_user += size + 1
        # Moodle's log id is site-wide: one offering's ids follow the previous one's, so that
        # offerings of one simulated site can share a log table, as they do in Moodle.
        off.log["id"] += next_logid - 1
        next_logid += len(off.log)
        offerings.append(off)
    return SimulatedCourse(spec, tuple(offerings))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _simulate_offering(
    rng: np.random.Generator,
    spec: CourseSpec,
    *,
    index: int,
    courseid: int,
    start: pd.Timestamp,
    n_students: int,
    first_userid: int,
    progress: float | None,
    signal: float,
    activity: float,
) -> SimulatedOffering:
    s_n, n_weeks = n_students, spec.n_weeks
    t0 = int(start.timestamp())
    end_s = t0 + n_weeks * WEEK
    # ---- latent traits
    ability = rng.standard_normal(s_n)
    engagement = 0.55 * ability + np.sqrt(1 - 0.55**2) * rng.standard_normal(s_n)
    regularity = rng.beta(2.0, 2.0, s_n)
    procrastination = rng.beta(2.0, 3.0, s_n)
    sociality = rng.standard_normal(s_n)
    hour_shift = rng.normal(0.0, 1.5, s_n) + 2.0 * procrastination
    drops = rng.random(s_n) < _sigmoid(-2.0 - 1.2 * engagement)
    drop_at = np.where(drops, t0 + rng.uniform(0.1, 0.8, s_n) * (end_s - t0), np.inf)
    ids = np.arange(first_userid + 1, first_userid + 1 + s_n, dtype=np.int64)
    teacher = first_userid

    acts = spec.activities
    by_mod: dict[str, list[Activity]] = {}
    for a in acts:
        by_mod.setdefault(a.modname, []).append(a)
    forum = by_mod["forum"][0]

    # ---- free sessions: weekly Poisson counts shaped by traits
    due_weeks = np.zeros(n_weeks)
    for a in acts:
        if a.due is not None:
            due_weeks[min(int(a.due // 7), n_weeks - 1)] = 1.0
    shape = 0.7 + 12.0 * regularity[:, None]
    week_noise = rng.gamma(shape, 1.0 / shape, (s_n, n_weeks))
    lam = (
        2.6
        * activity
        * np.exp(0.55 * engagement)[:, None]
        * week_noise
        * (1.0 + 1.4 * procrastination[:, None] * due_weeks[None, :])
        / (1.0 + 0.7 * procrastination[:, None])
    )
    n_sess = rng.poisson(lam)
    sess_student = np.repeat(np.repeat(np.arange(s_n), n_weeks), n_sess.ravel())
    sess_week = np.repeat(np.tile(np.arange(n_weeks), s_n), n_sess.ravel())
    n_s = sess_student.size
    weekday_w = np.array([1.0, 1.0, 0.95, 0.95, 0.8, 0.45, 0.6])
    day = rng.choice(7, n_s, p=weekday_w / weekday_w.sum())
    hour_w = np.array(
        [0.15, 0.08, 0.04, 0.02, 0.02, 0.05, 0.2, 0.5, 0.9, 1.2, 1.3, 1.2, 0.8, 0.9, 1.2, 1.3,
         1.2, 1.0, 0.9, 1.0, 1.2, 1.2, 0.9, 0.4]
    )  # fmt: skip
    hour = rng.choice(24, n_s, p=hour_w / hour_w.sum()) + hour_shift[sess_student]
    sess_start = (
        t0 + sess_week * WEEK + day * DAY + np.round(np.mod(hour, 24) * 3600).astype(np.int64)
    )
    sess_start = sess_start + rng.integers(0, 3600, n_s)
    sess_len = 1 + rng.geometric(1.0 / (5.0 * np.exp(0.25 * engagement[sess_student])))
    n_free = int(sess_len.sum())
    ev_sess = np.repeat(np.arange(n_s), sess_len)
    gaps = np.minimum(rng.exponential(50.0, n_free), 280.0).astype(np.int64) + 3
    first = np.zeros(n_free, dtype=bool)
    first[np.cumsum(sess_len) - sess_len] = True
    gaps[first] = 0
    cum = np.cumsum(gaps)
    cum -= np.repeat(cum[first], sess_len)
    f_time = sess_start[ev_sess] + cum
    f_stu = sess_student[ev_sess]
    # free action kinds (content, forum page, discussion, post, quiz page, assignment page,
    # grades): per-student weights, inverse-CDF sampling
    w = np.column_stack(
        [
            6.0 * np.exp(0.25 * ability + 0.2 * engagement),
            0.6 * np.exp(0.4 * sociality),
            1.2 * np.exp(0.6 * sociality),
            0.08 * np.exp(0.9 * sociality + 0.3 * engagement),
            0.7 * np.ones(s_n),
            0.6 * np.ones(s_n),
            0.35 * np.exp(0.3 * ability),
        ]
    )
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(n_free)
    kind = (u[:, None] > cdf[f_stu]).sum(axis=1)
    kind[first] = -1  # every session opens on the course page
    f_code = np.full(n_free, _CODE["\\core\\event\\course_viewed"], dtype=np.int64)
    f_cm = np.zeros(n_free, dtype=np.int64)
    f_obj = np.zeros(n_free, dtype=np.int64)
    f_aux = np.zeros(n_free, dtype=np.int64)
    week_now = np.clip((f_time - t0) // WEEK, 0, n_weeks - 1)
    # content: an open page/resource/url, mostly of the current or previous week
    content = [a for a in acts if a.modname in ("page", "resource", "url")]
    per_week = [[a for a in content if a.opens_week == wk] for wk in range(n_weeks)]
    width = max(len(x) for x in per_week)
    table = np.zeros((n_weeks, width), dtype=np.int64)
    count = np.zeros(n_weeks, dtype=np.int64)
    modcode = {"page": 1, "resource": 2, "url": 3}
    table_code = np.zeros((n_weeks, width), dtype=np.int64)
    for wk, lst in enumerate(per_week):
        count[wk] = len(lst)
        for j, a in enumerate(lst):
            table[wk, j] = a.cmid
            table_code[wk, j] = _CODE[f"\\mod_{a.modname}\\event\\course_module_viewed"]
        if not lst:
            count[wk] = 0
    del modcode
    m = kind == 0
    back = rng.geometric(0.55, int(m.sum())) - 1
    wk_pick = np.clip(week_now[m] - back, 0, n_weeks - 1)
    empty = count[wk_pick] == 0
    wk_pick[empty] = 0
    j = np.floor(rng.random(wk_pick.size) * count[wk_pick]).astype(np.int64)
    f_cm[m] = table[wk_pick, j]
    f_code[m] = table_code[wk_pick, j]
    # forum
    n_disc = 3 + n_weeks
    m = kind == 1
    f_code[m], f_cm[m] = _CODE["\\mod_forum\\event\\course_module_viewed"], forum.cmid
    m = kind == 2
    f_code[m], f_cm[m] = _CODE["\\mod_forum\\event\\discussion_viewed"], forum.cmid
    f_obj[m] = 1 + np.minimum(week_now[m] + rng.integers(0, 4, int(m.sum())), n_disc - 1)
    m = kind == 3
    f_code[m], f_cm[m] = _CODE["\\mod_forum\\event\\post_created"], forum.cmid
    f_aux[m] = 1 + np.minimum(week_now[m] + rng.integers(0, 4, int(m.sum())), n_disc - 1)
    # quiz / assign pages: the next activity due
    for k_idx, mod in ((4, "quiz"), (5, "assign")):
        lst = by_mod.get(mod, [])
        m = kind == k_idx
        if not lst:
            f_code[m] = _CODE["\\core\\event\\course_viewed"]
            continue
        dues = np.array([t0 + (a.due or 0) * DAY for a in lst])
        pos = np.minimum(np.searchsorted(dues, f_time[m]), len(lst) - 1)
        f_cm[m] = np.array([a.cmid for a in lst])[pos]
        f_code[m] = _CODE[f"\\mod_{mod}\\event\\course_module_viewed"]
    m = kind == 6
    f_code[m] = _CODE["\\gradereport_user\\event\\grade_report_viewed"]

    parts_stu = [f_stu]
    parts_time = [f_time]
    parts_code = [f_code]
    parts_cm = [f_cm]
    parts_obj = [f_obj]
    parts_aux = [f_aux]
    parts_user = [ids[f_stu]]
    parts_rel = [np.zeros(n_free, dtype=np.int64)]
    item_grades: dict[int, np.ndarray] = {}
    quiz_scores: list[np.ndarray] = []
    assign_scores: list[np.ndarray] = []
    obj_counter = 1

    def emit(stu: np.ndarray, time: np.ndarray, code: str, cm: int, obj: np.ndarray,
             aux: np.ndarray | int = 0, user: np.ndarray | None = None,
             rel: np.ndarray | None = None) -> None:  # fmt: skip
        n = stu.size
        parts_stu.append(stu)
        parts_time.append(time.astype(np.int64))
        parts_code.append(np.full(n, _CODE[code], dtype=np.int64))
        parts_cm.append(np.full(n, cm, dtype=np.int64))
        parts_obj.append(obj.astype(np.int64))
        parts_aux.append(np.broadcast_to(np.asarray(aux, dtype=np.int64), (n,)).copy())
        parts_user.append(ids[stu] if user is None else user)
        parts_rel.append(np.zeros(n, dtype=np.int64) if rel is None else rel)

    effort = 0.7 * engagement + 0.3 * ability
    for a in acts:
        if a.due is None or a.itemid is None:
            continue
        due_s = t0 + a.due * DAY
        open_s = t0 + a.opens_week * WEEK
        lead = np.minimum(
            rng.exponential(0.3 + 5.0 * (1 - procrastination)) * DAY, due_s - open_s - 600
        )
        when = due_s - lead
        does = (rng.random(s_n) < _sigmoid(1.1 + 1.5 * effort)) & (when < drop_at)
        stu = np.flatnonzero(does)
        when = when[stu].astype(np.int64)
        obj = np.arange(obj_counter, obj_counter + stu.size)
        obj_counter += stu.size
        if a.modname == "quiz":
            score = _sigmoid(0.3 + 1.3 * ability[stu] + rng.normal(0, 0.6, stu.size))
            emit(stu, when, "\\mod_quiz\\event\\course_module_viewed", a.cmid, obj)
            emit(stu, when + 8, "\\mod_quiz\\event\\attempt_started", a.cmid, obj,
                 rel=ids[stu])  # fmt: skip
            for page in range(1, 5):
                emit(stu, when + 8 + 70 * page, "\\mod_quiz\\event\\attempt_viewed", a.cmid, obj,
                     page, rel=ids[stu])  # fmt: skip
            emit(stu, when + 360, "\\mod_quiz\\event\\attempt_submitted", a.cmid, obj,
                 rel=ids[stu])  # fmt: skip
            emit(stu, when + 360, "\\mod_quiz\\event\\attempt_graded", a.cmid, obj,
                 rel=ids[stu])  # fmt: skip
            rev = rng.random(stu.size) < _sigmoid(-0.3 + 0.8 * ability[stu])
            emit(stu[rev], when[rev] + 400, "\\mod_quiz\\event\\attempt_reviewed", a.cmid,
                 obj[rev], rel=ids[stu[rev]])  # fmt: skip
            g = np.full(s_n, np.nan)
            g[stu] = np.round(10.0 * score, 2)
            item_grades[a.itemid] = g
            full = np.zeros(s_n)
            full[stu] = score
            quiz_scores.append(full)
        else:
            quality = _sigmoid(0.2 + 1.1 * ability[stu] + 0.5 * engagement[stu]
                               + rng.normal(0, 0.6, stu.size))  # fmt: skip
            words = rng.integers(80, 900, stu.size)
            emit(stu, when - 900, "\\mod_assign\\event\\course_module_viewed", a.cmid, obj)
            emit(stu, when - 890, "\\mod_assign\\event\\submission_status_viewed", a.cmid, obj)
            emit(stu, when - 600, "\\assignsubmission_onlinetext\\event\\submission_created",
                 a.cmid, obj, words, rel=ids[stu])  # fmt: skip
            emit(stu, when - 600, "\\assignsubmission_onlinetext\\event\\assessable_uploaded",
                 a.cmid, obj)  # fmt: skip
            revise = rng.random(stu.size) < 0.25 * _sigmoid(ability[stu] + engagement[stu])
            emit(stu[revise], when[revise] - 120,
                 "\\assignsubmission_onlinetext\\event\\submission_updated", a.cmid, obj[revise],
                 words[revise] + 50, rel=ids[stu[revise]])  # fmt: skip
            emit(stu, when, "\\mod_assign\\event\\assessable_submitted", a.cmid, obj)
            graded_at = int(due_s + 5 * DAY) + rng.integers(0, 2 * DAY, stu.size)
            emit(stu, graded_at, "\\mod_assign\\event\\submission_graded", a.cmid, obj,
                 user=np.full(stu.size, teacher), rel=ids[stu])  # fmt: skip
            look = rng.random(stu.size) < _sigmoid(0.0 + 0.8 * ability[stu])
            emit(stu[look], graded_at[look] + rng.integers(3600, 3 * DAY, int(look.sum())),
                 "\\gradereport_user\\event\\grade_report_viewed", 0, obj[look],
                 rel=ids[stu[look]])  # fmt: skip
            g = np.full(s_n, np.nan)
            g[stu] = np.round(20.0 * quality, 2)
            item_grades[a.itemid] = g
            full = np.zeros(s_n)
            full[stu] = quality
            assign_scores.append(full)

    stu_all = np.concatenate(parts_stu)
    time_all = np.concatenate(parts_time)
    keep = (time_all < drop_at[stu_all]) | (np.concatenate(parts_user) == teacher)
    now_s = None if progress is None else int(t0 + progress * (end_s - t0))
    if now_s is not None:
        keep &= time_all <= now_s
    order = np.argsort(time_all[keep], kind="stable")

    def take(parts: list[np.ndarray]) -> np.ndarray:
        return np.asarray(np.concatenate(parts)[keep][order])

    code_k, cm_k, obj_k = take(parts_code), take(parts_cm), take(parts_obj)
    # a course-module view's object is the activity instance (Moodle's objecttable row)
    instance_of = np.zeros(max(a.cmid for a in acts) + 1, dtype=np.int64)
    for a in acts:
        instance_of[a.cmid] = a.instance
    is_cm_view = np.array([t.target == "course_module" for t in TEMPLATES])[code_k]
    obj_k = np.where(is_cm_view, instance_of[cm_k], obj_k)
    log = _log_rows(
        code_k, take(parts_time), take(parts_user), take(parts_rel), cm_k, obj_k,
        take(parts_aux), courseid=courseid,
    )  # fmt: skip

    users = _users(rng, ids, teacher, courseid)
    traits = pd.DataFrame(
        {
            "userid": ids,
            "ability": ability,
            "engagement": engagement,
            "regularity": regularity,
            "procrastination": procrastination,
            "sociality": sociality,
            "dropout_time": pd.to_datetime(
                np.where(np.isfinite(drop_at), drop_at, np.nan), unit="s", utc=True
            ),
        }
    )
    # ---- grades: quiz average 30%, assignments 30%, final exam 40%; behaviour carries signal
    quiz = np.mean(quiz_scores, axis=0) if quiz_scores else np.zeros(s_n)
    assign = np.mean(assign_scores, axis=0) if assign_scores else np.zeros(s_n)
    sit_exam = np.isinf(drop_at)
    exam = _sigmoid(0.6 + 1.2 * ability + 0.35 * engagement + rng.normal(0, 0.7, s_n))
    exam = np.where(sit_exam, exam, 0.0)
    latent = 0.3 * quiz + 0.3 * assign + 0.4 * exam
    noise = rng.uniform(0.0, 1.0, s_n) * 0.3 + 0.35
    total = spec.grademax * (signal * latent + (1 - signal) * noise)
    graded_any = np.zeros(s_n, dtype=bool)
    for g in item_grades.values():
        graded_any |= ~np.isnan(g)
    total = np.where(graded_any | sit_exam, np.round(total, 2), np.nan)
    grades = pd.DataFrame({"userid": ids})
    if progress is None:
        for itemid, g in item_grades.items():
            grades[itemid] = g
        grades["course_total"] = total
    else:
        grades["course_total"] = np.nan
    return SimulatedOffering(
        index=index,
        courseid=courseid,
        start=start,
        end=pd.Timestamp(end_s, unit="s", tz="UTC"),
        now=None if now_s is None else pd.Timestamp(now_s, unit="s", tz="UTC"),
        users=users,
        log=log,
        grades=grades,
        traits=traits,
        spec=spec,
    )


def _users(rng: np.random.Generator, ids: np.ndarray, teacher: int, courseid: int) -> pd.DataFrame:
    n = ids.size + 1
    first = np.array(_FIRST)[rng.integers(0, len(_FIRST), n)]
    last = np.array(_LAST)[rng.integers(0, len(_LAST), n)]
    uid = np.concatenate([[teacher], ids])
    role = np.array(["editingteacher"] + ["student"] * ids.size)
    return pd.DataFrame(
        {
            "userid": uid,
            "username": [f"u{u}" for u in uid],
            "firstname": first,
            "lastname": last,
            "fullname": np.char.add(np.char.add(first, " "), last),
            "email": [f"u{u}@example.com" for u in uid],
            "idnumber": [f"S{u:05d}" for u in uid],
            "role": role,
            "courseid": courseid,
        }
    )


def _log_rows(
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
