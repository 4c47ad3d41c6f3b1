"""A seeded, vectorised simulator of Moodle courses, for the demo, the tests and the benchmarks.

Why a package of its own (``simulation``) and not in ``ml`` or the test tree: the demo and the
benchmarks need it too, so it ships with the tool, but it is a data generator, not part of the
model; ``ml`` may not import it (import-linter holds both directions). It only needs numpy,
pandas and ``ml``'s event schema. It writes exactly the shapes a real Moodle 5.1 produces
(checked against the recordings in ``tests/fixtures``/``shared/fixtures/moodle-5.1``):
``logstore_standard_log`` rows here, as the companion plugin's web service and the DB source
give them (``id`` + :data:`ml.events.STANDARD_LOG_COLUMNS`); the downloads and web-service
answers built from them in :mod:`simulation.exports`; the events' templates in
:mod:`simulation.templates`.

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
A :class:`ContactPlan` adds a teacher's contacts to the last offering: from its contact on, a
contacted student works more and ends with more points, by amounts the caller sets (0: none).

Everything is drawn with one ``numpy.random.Generator`` per offering, seeded from ``seed`` and
the offering's index, with array operations only, so ten million events take seconds and the same
seed always gives the same course.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from ml.dataset import Offering
from ml.events import from_standard_log
from simulation.templates import TEMPLATE_CODE, TEMPLATES, log_rows

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


@dataclass(frozen=True, slots=True)
class ContactPlan:
    """A teacher contacting students of the last offering, with a known effect (issue #16).

    ``contacts`` maps a student's Moodle user id to when they were (first) contacted, in weeks
    after the offering's start (4.5: the middle of week 5). Who is contacted is the caller's
    choice, typically the students at risk at that week by some model's chances: the simulator
    knows no model. What a contact does from that moment on:

    * ``engagement``: added to the student's engagement (a latent trait; 1.0 is one standard
      deviation) for their free work sessions: each week that ends after the contact gets
      ``exp(0.55 * engagement) - 1`` times the student's usual expected sessions on top (the
      simulator's own law of sessions, thinned to the part after the contact), so time spent,
      active days and with them a model's pass chance rise. Graded work and dropping out are
      left as they were. Not negative: a contact that lowers activity is not simulated.
    * ``grade``: points (out of ``spec.grademax``) added to the student's course total,
      clipped to the scale; a total Moodle shows as ``-`` stays ``-``.

    The effect is drawn from a random stream of its own, so the course without it is exactly
    the course without a plan: with both effects 0 (contacts that change nothing) the offering
    is byte-identical to ``contacts=None``, and with an effect every draw but the effect's own
    is the same, so the two runs are each other's counterfactual (the same students, the same
    weeks up to the contact, the same grades but for the planted points).
    """

    contacts: Mapping[int, float]
    engagement: float = 0.0
    grade: float = 0.0

    def __post_init__(self) -> None:
        if self.engagement < 0:
            raise ValueError("a contact's engagement effect is not negative")


# Seeds the effect's own stream: [seed, offering index, _CONTACT_STREAM].
_CONTACT_STREAM: Final = 16


def _no_contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "userid": pd.Series(dtype=np.int64),
            "time": pd.Series(dtype="datetime64[ns, UTC]"),
            "week": pd.Series(dtype=np.float64),
        }
    )


# ------------------------------------------------------------------ simulated data
@dataclass(frozen=True, slots=True)
class SimulatedOffering:
    """One Moodle course (one yearly offering). ``grades`` is empty for the running one.

    ``log`` holds standard-log rows; ``users`` the enrolled users (students and one teacher);
    ``grades`` one row per student: ``userid``, one column per graded item id (raw points, NaN
    when ungraded) and ``course_total`` (NaN when Moodle would show ``-``). ``contacts``: the
    students a :class:`ContactPlan` contacted (``userid``, ``time`` in UTC, ``week`` after the
    start), empty without one.
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
    contacts: pd.DataFrame = field(default_factory=_no_contacts)

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
    contacts: ContactPlan | None = None,
    first_courseid: int = 100,
    first_userid: int = 100,
    first_logid: int = 1,
) -> SimulatedCourse:
    """Several past offerings with final grades, plus (unless ``current_progress`` is None) one
    offering in progress whose log stops at that fraction of the course.

    ``activity`` scales the number of sessions (about 300 events per student at 1.0), so that
    benchmarks reach ten million events with a realistic cohort. ``signal`` in [0, 1] scales how
    much latent traits drive grades (0: grades are pure noise). ``contacts`` plants a teacher's
    contacts and their effect in the *last* offering (the current one, else the last past one,
    which has final grades): see :class:`ContactPlan`.

    ``first_courseid``, ``first_userid`` and ``first_logid`` number the Moodle courses, users
    and log rows from there (the defaults keep every seed's course as it always was), so that
    several simulated courses can share one site without their ids meeting (#17's site-wide
    model).
    """
    spec = spec or CourseSpec()
    offerings = []
    next_user = first_userid
    next_logid = first_logid
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
            courseid=first_courseid + k,
            start=pd.Timestamp(start),
            n_students=max(size, 2),
            first_userid=next_user,
            progress=current_progress if is_current else None,
            signal=signal,
            activity=activity,
            plan=contacts if k == n_total - 1 else None,
            effect_rng=np.random.default_rng([seed, k, _CONTACT_STREAM]),
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


# ------------------------------------------------------------------ one offering, step by step
# Every step draws from the offering's one generator, in the order written here: changing that
# order (or adding a draw) changes every course a seed gives, which tests and benchmarks rely on.
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
    plan: ContactPlan | None = None,
    effect_rng: np.random.Generator | None = None,
) -> SimulatedOffering:
    t0 = int(start.timestamp())
    end_s = t0 + spec.n_weeks * WEEK
    traits = _draw_traits(rng, n_students, t0, end_s)
    ids = np.arange(first_userid + 1, first_userid + 1 + n_students, dtype=np.int64)
    teacher = first_userid
    events = _EventParts(ids)
    now_s = None if progress is None else int(t0 + progress * (end_s - t0))
    contact_s = _contact_times(plan, ids, t0, end_s, now_s)
    sess_student, sess_start, lam = _sessions(rng, spec, traits, t0, activity)
    f_stu, f_time, first = _session_actions(rng, traits, sess_student, sess_start)
    f_code, f_cm, f_obj, f_aux = _free_actions(rng, spec, traits, f_stu, f_time, first, t0)
    events.add(
        f_stu, f_time, f_code, f_cm, f_obj, f_aux, ids[f_stu], np.zeros(f_stu.size, dtype=np.int64)
    )
    marks = _graded_work(rng, spec, traits, events, t0, teacher)
    if plan is not None and plan.engagement > 0 and effect_rng is not None:
        _contact_work(effect_rng, spec, traits, events, lam, contact_s, t0, plan.engagement)
    log = _log_until(events, traits.drop_at, teacher, now_s, spec.activities, courseid)
    users = _users(rng, ids, teacher, courseid)
    shift = None
    if plan is not None and plan.grade != 0:
        shift = np.where(np.isfinite(contact_s), plan.grade, 0.0)
    grades = _final_grades(
        rng, spec, traits, marks, ids, signal, finished=progress is None, shift=shift
    )
    return SimulatedOffering(
        index=index,
        courseid=courseid,
        start=start,
        end=pd.Timestamp(end_s, unit="s", tz="UTC"),
        now=None if now_s is None else pd.Timestamp(now_s, unit="s", tz="UTC"),
        users=users,
        log=log,
        grades=grades,
        traits=_traits_frame(ids, traits),
        spec=spec,
        contacts=_contacts_frame(ids, contact_s, t0),
    )


def _contact_times(
    plan: ContactPlan | None, ids: np.ndarray, t0: int, end_s: int, now_s: int | None
) -> np.ndarray:
    """Each student's contact time (epoch seconds; inf when not contacted)."""
    out = np.full(ids.size, np.inf)
    if plan is None:
        return out
    position = {int(u): i for i, u in enumerate(ids)}
    for userid, week in plan.contacts.items():
        if int(userid) not in position:
            raise ValueError(f"contact of user {userid}, who is not a student of the offering")
        at = t0 + float(week) * WEEK
        if not t0 <= at <= end_s:
            raise ValueError(f"contact of user {userid} at week {week}, outside the term")
        if now_s is not None and at > now_s:
            raise ValueError(f"contact of user {userid} at week {week}, after the offering's now")
        out[position[int(userid)]] = at
    return out


def _contacts_frame(ids: np.ndarray, contact_s: np.ndarray, t0: int) -> pd.DataFrame:
    done = np.flatnonzero(np.isfinite(contact_s))
    if done.size == 0:
        return _no_contacts()
    order = done[np.argsort(contact_s[done], kind="stable")]
    return pd.DataFrame(
        {
            "userid": ids[order].astype(np.int64),
            "time": pd.to_datetime(np.round(contact_s[order]).astype(np.int64), unit="s", utc=True),
            "week": (contact_s[order] - t0) / WEEK,
        }
    )


def _contact_work(
    rng: np.random.Generator,
    spec: CourseSpec,
    traits: _Traits,
    events: _EventParts,
    lam: np.ndarray,
    contact_s: np.ndarray,
    t0: int,
    engagement: float,
) -> None:
    """The extra free sessions of contacted students after their contact (:class:`ContactPlan`),
    all drawn from the effect's own generator ``rng``, added to ``events`` as one batch."""
    n_weeks = spec.n_weeks
    week_end = t0 + (np.arange(n_weeks) + 1) * WEEK
    after = week_end[None, :] > contact_s[:, None]
    n_sess = rng.poisson(lam * (np.exp(0.55 * engagement) - 1.0) * after)
    stu, start = _session_starts(rng, traits, n_sess, t0)
    keep = start >= contact_s[stu]
    stu, start = stu[keep], start[keep]
    f_stu, f_time, first = _session_actions(rng, traits, stu, start)
    f_code, f_cm, f_obj, f_aux = _free_actions(rng, spec, traits, f_stu, f_time, first, t0)
    events.add(
        f_stu, f_time, f_code, f_cm, f_obj, f_aux, events.ids[f_stu],
        np.zeros(f_stu.size, dtype=np.int64),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Traits:
    """The latent traits of an offering's students, one array entry per student."""

    ability: np.ndarray
    engagement: np.ndarray
    regularity: np.ndarray
    procrastination: np.ndarray
    sociality: np.ndarray
    hour_shift: np.ndarray
    drop_at: np.ndarray  # epoch seconds of dropping out; inf for a student who stays


def _draw_traits(rng: np.random.Generator, n: int, t0: int, end_s: int) -> _Traits:
    """Engagement follows ability; procrastinators work later in the day; the less engaged drop
    out more often, somewhere between 10% and 80% of the course."""
    ability = rng.standard_normal(n)
    engagement = 0.55 * ability + np.sqrt(1 - 0.55**2) * rng.standard_normal(n)
    regularity = rng.beta(2.0, 2.0, n)
    procrastination = rng.beta(2.0, 3.0, n)
    sociality = rng.standard_normal(n)
    hour_shift = rng.normal(0.0, 1.5, n) + 2.0 * procrastination
    drops = rng.random(n) < _sigmoid(-2.0 - 1.2 * engagement)
    drop_at = np.where(drops, t0 + rng.uniform(0.1, 0.8, n) * (end_s - t0), np.inf)
    return _Traits(ability, engagement, regularity, procrastination, sociality, hour_shift, drop_at)


def _traits_frame(ids: np.ndarray, traits: _Traits) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "userid": ids,
            "ability": traits.ability,
            "engagement": traits.engagement,
            "regularity": traits.regularity,
            "procrastination": traits.procrastination,
            "sociality": traits.sociality,
            "dropout_time": pd.to_datetime(
                np.where(np.isfinite(traits.drop_at), traits.drop_at, np.nan), unit="s", utc=True
            ),
        }
    )


@dataclass(slots=True)
class _EventParts:
    """The offering's events, column by column, one array per batch, concatenated once.

    The log is sorted by time with a stable sort, so events of the same second keep the order
    their batches were added in (a quiz attempt's submitted before its graded)."""

    ids: np.ndarray  # Moodle user id of each student index
    stu: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)
    code: list[np.ndarray] = field(default_factory=list)
    cm: list[np.ndarray] = field(default_factory=list)
    obj: list[np.ndarray] = field(default_factory=list)
    aux: list[np.ndarray] = field(default_factory=list)
    user: list[np.ndarray] = field(default_factory=list)
    rel: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        stu: np.ndarray,
        time: np.ndarray,
        code: np.ndarray,
        cm: np.ndarray,
        obj: np.ndarray,
        aux: np.ndarray,
        user: np.ndarray,
        rel: np.ndarray,
    ) -> None:
        self.stu.append(stu)
        self.time.append(time)
        self.code.append(code)
        self.cm.append(cm)
        self.obj.append(obj)
        self.aux.append(aux)
        self.user.append(user)
        self.rel.append(rel)

    def emit(self, stu: np.ndarray, time: np.ndarray, code: str, cm: int, obj: np.ndarray,
             aux: np.ndarray | int = 0, user: np.ndarray | None = None,
             rel: np.ndarray | None = None) -> None:  # fmt: skip
        """One event of template ``code`` on module ``cm`` per student in ``stu`` (by default
        done by that student, about nobody else)."""
        n = stu.size
        self.add(
            stu,
            time.astype(np.int64),
            np.full(n, TEMPLATE_CODE[code], dtype=np.int64),
            np.full(n, cm, dtype=np.int64),
            obj.astype(np.int64),
            np.broadcast_to(np.asarray(aux, dtype=np.int64), (n,)).copy(),
            self.ids[stu] if user is None else user,
            np.zeros(n, dtype=np.int64) if rel is None else rel,
        )


def _sessions(
    rng: np.random.Generator, spec: CourseSpec, traits: _Traits, t0: int, activity: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free work sessions: (student index, start time) of each, and the expected number of
    sessions per student and week they were drawn from.

    Weekly Poisson counts, more when engaged, spread unevenly when irregular, bunched in weeks
    with a deadline when procrastinating; each on a weekday and hour rhythm (quiet nights and
    weekends) shifted by the student's own hour."""
    s_n, n_weeks = traits.ability.size, spec.n_weeks
    procrastination = traits.procrastination[:, None]
    due_weeks = np.zeros(n_weeks)
    for a in spec.activities:
        if a.due is not None:
            due_weeks[min(int(a.due // 7), n_weeks - 1)] = 1.0
    shape = 0.7 + 12.0 * traits.regularity[:, None]
    week_noise = rng.gamma(shape, 1.0 / shape, (s_n, n_weeks))
    lam = (
        2.6
        * activity
        * np.exp(0.55 * traits.engagement)[:, None]
        * week_noise
        * (1.0 + 1.4 * procrastination * due_weeks[None, :])
        / (1.0 + 0.7 * procrastination)
    )
    n_sess = rng.poisson(lam)
    sess_student, sess_start = _session_starts(rng, traits, n_sess, t0)
    return sess_student, sess_start, lam


def _session_starts(
    rng: np.random.Generator, traits: _Traits, n_sess: np.ndarray, t0: int
) -> tuple[np.ndarray, np.ndarray]:
    """(student index, start time) of ``n_sess[student, week]`` sessions per student and week,
    on the weekday and hour rhythms."""
    s_n, n_weeks = n_sess.shape
    sess_student = np.repeat(np.repeat(np.arange(s_n), n_weeks), n_sess.ravel())
    sess_week = np.repeat(np.tile(np.arange(n_weeks), s_n), n_sess.ravel())
    n_s = sess_student.size
    weekday_w = np.array([1.0, 1.0, 0.95, 0.95, 0.8, 0.45, 0.6])
    day = rng.choice(7, n_s, p=weekday_w / weekday_w.sum())
    hour_w = np.array(
        [0.15, 0.08, 0.04, 0.02, 0.02, 0.05, 0.2, 0.5, 0.9, 1.2, 1.3, 1.2, 0.8, 0.9, 1.2, 1.3,
         1.2, 1.0, 0.9, 1.0, 1.2, 1.2, 0.9, 0.4]
    )  # fmt: skip
    hour = rng.choice(24, n_s, p=hour_w / hour_w.sum()) + traits.hour_shift[sess_student]
    sess_start = (
        t0 + sess_week * WEEK + day * DAY + np.round(np.mod(hour, 24) * 3600).astype(np.int64)
    )
    sess_start = sess_start + rng.integers(0, 3600, n_s)
    return sess_student, np.asarray(sess_start)


def _session_actions(
    rng: np.random.Generator, traits: _Traits, sess_student: np.ndarray, sess_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The actions of each session: (student index, time, opens-a-session mask) per action.

    A geometric number of actions (longer when engaged), 3 seconds to under 5 minutes apart."""
    sess_len = 1 + rng.geometric(1.0 / (5.0 * np.exp(0.25 * traits.engagement[sess_student])))
    n_free = int(sess_len.sum())
    ev_sess = np.repeat(np.arange(sess_student.size), sess_len)
    gaps = np.minimum(rng.exponential(50.0, n_free), 280.0).astype(np.int64) + 3
    first = np.zeros(n_free, dtype=bool)
    first[np.cumsum(sess_len) - sess_len] = True
    gaps[first] = 0
    cum = np.cumsum(gaps)
    cum -= np.repeat(cum[first], sess_len)
    return sess_student[ev_sess], sess_start[ev_sess] + cum, first


def _free_actions(
    rng: np.random.Generator,
    spec: CourseSpec,
    traits: _Traits,
    f_stu: np.ndarray,
    f_time: np.ndarray,
    first: np.ndarray,
    t0: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What each session action is: (template code, cmid, object id, aux) per action.

    Every session opens on the course page; then content of the current or a recent week,
    forum pages and posts (the sociable), the next quiz or assignment due, or the grades."""
    n_free, n_weeks = f_stu.size, spec.n_weeks
    kind = _action_kinds(rng, traits, f_stu, first)
    f_code = np.full(n_free, TEMPLATE_CODE["\\core\\event\\course_viewed"], dtype=np.int64)
    f_cm = np.zeros(n_free, dtype=np.int64)
    f_obj = np.zeros(n_free, dtype=np.int64)
    f_aux = np.zeros(n_free, dtype=np.int64)
    week_now = np.clip((f_time - t0) // WEEK, 0, n_weeks - 1)
    m = kind == 0
    f_cm[m], f_code[m] = _content_views(rng, spec, week_now[m])
    by_mod: dict[str, list[Activity]] = {}
    for a in spec.activities:
        by_mod.setdefault(a.modname, []).append(a)
    forum = by_mod["forum"][0]
    n_disc = 3 + n_weeks
    m = kind == 1
    f_code[m], f_cm[m] = TEMPLATE_CODE["\\mod_forum\\event\\course_module_viewed"], forum.cmid
    m = kind == 2
    f_code[m], f_cm[m] = TEMPLATE_CODE["\\mod_forum\\event\\discussion_viewed"], forum.cmid
    f_obj[m] = 1 + np.minimum(week_now[m] + rng.integers(0, 4, int(m.sum())), n_disc - 1)
    m = kind == 3
    f_code[m], f_cm[m] = TEMPLATE_CODE["\\mod_forum\\event\\post_created"], forum.cmid
    f_aux[m] = 1 + np.minimum(week_now[m] + rng.integers(0, 4, int(m.sum())), n_disc - 1)
    # quiz / assign pages: the next activity due
    for k_idx, mod in ((4, "quiz"), (5, "assign")):
        lst = by_mod.get(mod, [])
        m = kind == k_idx
        if not lst:
            f_code[m] = TEMPLATE_CODE["\\core\\event\\course_viewed"]
            continue
        dues = np.array([t0 + (a.due or 0) * DAY for a in lst])
        pos = np.minimum(np.searchsorted(dues, f_time[m]), len(lst) - 1)
        f_cm[m] = np.array([a.cmid for a in lst])[pos]
        f_code[m] = TEMPLATE_CODE[f"\\mod_{mod}\\event\\course_module_viewed"]
    m = kind == 6
    f_code[m] = TEMPLATE_CODE["\\gradereport_user\\event\\grade_report_viewed"]
    return f_code, f_cm, f_obj, f_aux


def _action_kinds(
    rng: np.random.Generator, traits: _Traits, f_stu: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Per action, its kind: 0 content, 1 forum page, 2 discussion, 3 post, 4 quiz page,
    5 assignment page, 6 grades; -1 the course page that opens every session.

    Each student has their own mix (weights from the traits), sampled by inverse CDF."""
    ability, engagement, sociality = traits.ability, traits.engagement, traits.sociality
    w = np.column_stack(
        [
            6.0 * np.exp(0.25 * ability + 0.2 * engagement),
            0.6 * np.exp(0.4 * sociality),
            1.2 * np.exp(0.6 * sociality),
            0.08 * np.exp(0.9 * sociality + 0.3 * engagement),
            0.7 * np.ones(ability.size),
            0.6 * np.ones(ability.size),
            0.35 * np.exp(0.3 * ability),
        ]
    )
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(f_stu.size)
    kind = (u[:, None] > cdf[f_stu]).sum(axis=1)
    kind[first] = -1
    return np.asarray(kind)


def _content_views(
    rng: np.random.Generator, spec: CourseSpec, week_now: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cmid, template code) of content views made in weeks ``week_now``: a page, file or link
    opened in that week or, geometrically less often, in an earlier one."""
    n_weeks = spec.n_weeks
    content = [a for a in spec.activities if a.modname in ("page", "resource", "url")]
    per_week = [[a for a in content if a.opens_week == wk] for wk in range(n_weeks)]
    width = max(len(x) for x in per_week)
    table = np.zeros((n_weeks, width), dtype=np.int64)
    table_code = np.zeros((n_weeks, width), dtype=np.int64)
    count = np.array([len(lst) for lst in per_week], dtype=np.int64)
    for wk, lst in enumerate(per_week):
        for j, a in enumerate(lst):
            table[wk, j] = a.cmid
            table_code[wk, j] = TEMPLATE_CODE[f"\\mod_{a.modname}\\event\\course_module_viewed"]
    back = rng.geometric(0.55, week_now.size) - 1
    wk_pick = np.clip(week_now - back, 0, n_weeks - 1)
    wk_pick[count[wk_pick] == 0] = 0
    pick = np.floor(rng.random(wk_pick.size) * count[wk_pick]).astype(np.int64)
    return table[wk_pick, pick], table_code[wk_pick, pick]


@dataclass(frozen=True, slots=True)
class _Marks:
    """Graded work: raw points per grade item (NaN when not done), and per quiz / assignment
    the score in [0, 1] of every student (0 when not done)."""

    item_grades: dict[int, np.ndarray]
    quiz_scores: list[np.ndarray]
    assign_scores: list[np.ndarray]


def _graded_work(
    rng: np.random.Generator,
    spec: CourseSpec,
    traits: _Traits,
    events: _EventParts,
    t0: int,
    teacher: int,
) -> _Marks:
    """Each quiz and assignment: who does it (the effortful, before dropping out), when (the
    procrastinators close to the deadline), its events and its mark."""
    s_n = traits.ability.size
    marks = _Marks({}, [], [])
    effort = 0.7 * traits.engagement + 0.3 * traits.ability
    obj_counter = 1
    for a in spec.activities:
        if a.due is None or a.itemid is None:
            continue
        due_s = t0 + a.due * DAY
        open_s = t0 + a.opens_week * WEEK
        lead = np.minimum(
            rng.exponential(0.3 + 5.0 * (1 - traits.procrastination)) * DAY,
            due_s - open_s - 600,
        )
        when = due_s - lead
        does = (rng.random(s_n) < _sigmoid(1.1 + 1.5 * effort)) & (when < traits.drop_at)
        stu = np.flatnonzero(does)
        when = when[stu].astype(np.int64)
        obj = np.arange(obj_counter, obj_counter + stu.size)
        obj_counter += stu.size
        if a.modname == "quiz":
            score = _quiz_attempts(rng, events, a.cmid, traits, stu, when, obj)
            points, scores = 10.0, marks.quiz_scores
        else:
            score = _assignment_submissions(
                rng, events, a.cmid, traits, stu, when, obj, due_s, teacher
            )
            points, scores = 20.0, marks.assign_scores
        g = np.full(s_n, np.nan)
        g[stu] = np.round(points * score, 2)
        marks.item_grades[a.itemid] = g
        full = np.zeros(s_n)
        full[stu] = score
        scores.append(full)
    return marks


def _quiz_attempts(
    rng: np.random.Generator,
    events: _EventParts,
    cmid: int,
    traits: _Traits,
    stu: np.ndarray,
    when: np.ndarray,
    obj: np.ndarray,
) -> np.ndarray:
    """One attempt per student in ``stu``: viewed, started, four pages, submitted and graded in
    six minutes, reviewed by the abler; returns the scores in [0, 1]."""
    ability, ids = traits.ability, events.ids
    score = _sigmoid(0.3 + 1.3 * ability[stu] + rng.normal(0, 0.6, stu.size))
    events.emit(stu, when, "\\mod_quiz\\event\\course_module_viewed", cmid, obj)
    events.emit(stu, when + 8, "\\mod_quiz\\event\\attempt_started", cmid, obj, rel=ids[stu])
    for page in range(1, 5):
        events.emit(stu, when + 8 + 70 * page, "\\mod_quiz\\event\\attempt_viewed", cmid, obj,
                    page, rel=ids[stu])  # fmt: skip
    events.emit(stu, when + 360, "\\mod_quiz\\event\\attempt_submitted", cmid, obj,
                rel=ids[stu])  # fmt: skip
    events.emit(stu, when + 360, "\\mod_quiz\\event\\attempt_graded", cmid, obj, rel=ids[stu])
    rev = rng.random(stu.size) < _sigmoid(-0.3 + 0.8 * ability[stu])
    events.emit(stu[rev], when[rev] + 400, "\\mod_quiz\\event\\attempt_reviewed", cmid,
                obj[rev], rel=ids[stu[rev]])  # fmt: skip
    return score


def _assignment_submissions(
    rng: np.random.Generator,
    events: _EventParts,
    cmid: int,
    traits: _Traits,
    stu: np.ndarray,
    when: np.ndarray,
    obj: np.ndarray,
    due_s: float,
    teacher: int,
) -> np.ndarray:
    """One online-text submission per student in ``stu`` (a quarter of the able and engaged
    revise it), graded by the teacher five to seven days after the deadline, the grade looked
    at by the abler; returns the qualities in [0, 1]."""
    ability, engagement, ids = traits.ability, traits.engagement, events.ids
    quality = _sigmoid(0.2 + 1.1 * ability[stu] + 0.5 * engagement[stu]
                       + rng.normal(0, 0.6, stu.size))  # fmt: skip
    words = rng.integers(80, 900, stu.size)
    events.emit(stu, when - 900, "\\mod_assign\\event\\course_module_viewed", cmid, obj)
    events.emit(stu, when - 890, "\\mod_assign\\event\\submission_status_viewed", cmid, obj)
    events.emit(stu, when - 600, "\\assignsubmission_onlinetext\\event\\submission_created",
                cmid, obj, words, rel=ids[stu])  # fmt: skip
    events.emit(stu, when - 600, "\\assignsubmission_onlinetext\\event\\assessable_uploaded",
                cmid, obj)  # fmt: skip
    revise = rng.random(stu.size) < 0.25 * _sigmoid(ability[stu] + engagement[stu])
    events.emit(stu[revise], when[revise] - 120,
                "\\assignsubmission_onlinetext\\event\\submission_updated", cmid, obj[revise],
                words[revise] + 50, rel=ids[stu[revise]])  # fmt: skip
    events.emit(stu, when, "\\mod_assign\\event\\assessable_submitted", cmid, obj)
    graded_at = int(due_s + 5 * DAY) + rng.integers(0, 2 * DAY, stu.size)
    events.emit(stu, graded_at, "\\mod_assign\\event\\submission_graded", cmid, obj,
                user=np.full(stu.size, teacher), rel=ids[stu])  # fmt: skip
    look = rng.random(stu.size) < _sigmoid(0.0 + 0.8 * ability[stu])
    events.emit(stu[look], graded_at[look] + rng.integers(3600, 3 * DAY, int(look.sum())),
                "\\gradereport_user\\event\\grade_report_viewed", 0, obj[look],
                rel=ids[stu[look]])  # fmt: skip
    return quality


def _log_until(
    events: _EventParts,
    drop_at: np.ndarray,
    teacher: int,
    now_s: int | None,
    acts: tuple[Activity, ...],
    courseid: int,
) -> pd.DataFrame:
    """The standard log, in time order: students' events stop when they drop out, everyone's
    at ``now_s`` for the running offering (the teacher's grading goes on)."""
    stu_all = np.concatenate(events.stu)
    time_all = np.concatenate(events.time)
    keep = (time_all < drop_at[stu_all]) | (np.concatenate(events.user) == teacher)
    if now_s is not None:
        keep &= time_all <= now_s
    order = np.argsort(time_all[keep], kind="stable")

    def take(parts: list[np.ndarray]) -> np.ndarray:
        return np.asarray(np.concatenate(parts)[keep][order])

    code_k, cm_k, obj_k = take(events.code), take(events.cm), take(events.obj)
    # a course-module view's object is the activity instance (Moodle's objecttable row)
    instance_of = np.zeros(max(a.cmid for a in acts) + 1, dtype=np.int64)
    for a in acts:
        instance_of[a.cmid] = a.instance
    is_cm_view = np.array([t.target == "course_module" for t in TEMPLATES])[code_k]
    obj_k = np.where(is_cm_view, instance_of[cm_k], obj_k)
    return log_rows(
        code_k, take(events.time), take(events.user), take(events.rel), cm_k, obj_k,
        take(events.aux), courseid=courseid,
    )  # fmt: skip


def _final_grades(
    rng: np.random.Generator,
    spec: CourseSpec,
    traits: _Traits,
    marks: _Marks,
    ids: np.ndarray,
    signal: float,
    *,
    finished: bool,
    shift: np.ndarray | None = None,
) -> pd.DataFrame:
    """Quiz average 30%, assignments 30%, final exam 40% (sat by those who did not drop out);
    ``signal`` mixes that with noise; ``shift`` (points per student: a contact's effect) is
    added, within the scale. No total for a student with nothing graded and no exam, and no
    grades at all while the offering runs."""
    s_n = ids.size
    ability, engagement, drop_at = traits.ability, traits.engagement, traits.drop_at
    quiz = np.mean(marks.quiz_scores, axis=0) if marks.quiz_scores else np.zeros(s_n)
    assign = np.mean(marks.assign_scores, axis=0) if marks.assign_scores else np.zeros(s_n)
    sit_exam = np.isinf(drop_at)
    exam = _sigmoid(0.6 + 1.2 * ability + 0.35 * engagement + rng.normal(0, 0.7, s_n))
    exam = np.where(sit_exam, exam, 0.0)
    latent = 0.3 * quiz + 0.3 * assign + 0.4 * exam
    noise = rng.uniform(0.0, 1.0, s_n) * 0.3 + 0.35
    total = spec.grademax * (signal * latent + (1 - signal) * noise)
    if shift is not None:
        total = np.clip(total + shift, 0.0, spec.grademax)
    graded_any = np.zeros(s_n, dtype=bool)
    for g in marks.item_grades.values():
        graded_any |= ~np.isnan(g)
    total = np.where(graded_any | sit_exam, np.round(total, 2), np.nan)
    grades = pd.DataFrame({"userid": ids})
    if finished:
        for itemid, g in marks.item_grades.items():
            grades[itemid] = g
        grades["course_total"] = total
    else:
        grades["course_total"] = np.nan
    return grades


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
