"""A simulated course where a teacher contacts students at risk, with and without an effect.

Shared by the ``ml`` estimate's tests and the service's. One seed gives two runs of the same
course (``simulation.course.ContactPlan``): ``without`` (the contacts change nothing, the
planted effect is 0) and ``with_effect`` (contacted students work more from the contact on,
and their final grade gains ``grade`` points of 100). Every draw but the effect's own is the
same in both runs, so each is the other's counterfactual, and the true effect on the contacted
students is known exactly: the difference between the two runs, student by student.

The pass chances come from a small scorer standing in for the tool's models (so that the test
stays within seconds): per week, a logistic regression on six effort features (log counts of
actions, active days, time, sessions, share of activities, days since the last action) trained
on the earlier offerings at the same week, as the scoring does. It has no cohort-relative
feature, so one student's extra work does not move another's chance. The teacher looks at the
chances at weeks 3 and 6 and contacts half of the students under 50 %, drawn at random (seeded),
at weeks 3.5 and 6.5: who is contacted depends on the shown chance only, as the matching
assumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.dataset import Offering, build_training_set
from ml.features import compute_features
from simulation.course import ContactPlan, SimulatedOffering, simulate_course

N_WEEKS = 12
SCALE = 20.0
PASS_MARK = 10.0
FEATURES = (
    "n_actions",
    "active_days",
    "total_time_min",
    "n_sessions",
    "share_activities",
    "days_since_last",
)
ENGAGEMENT = 2.0
GRADE_POINTS = 20.0  # of 100: 4 points out of 20


def _design(features: pd.DataFrame) -> np.ndarray:
    return np.asarray(np.log1p(features[list(FEATURES)].to_numpy(dtype=np.float64)))


@dataclass(frozen=True)
class _WeekModel:
    model: LogisticRegression
    mean: np.ndarray
    sd: np.ndarray

    def chance(self, features: pd.DataFrame) -> np.ndarray:
        z = (_design(features) - self.mean) / self.sd
        return np.asarray(self.model.predict_proba(z)[:, 1])


def _week_models(training: Sequence[Offering]) -> dict[int, _WeekModel]:
    out = {}
    for week in range(1, N_WEEKS + 1):
        ts = build_training_set(training, checkpoints=(week / N_WEEKS,), scale=SCALE)
        x = _design(ts.X)
        mean, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
        model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / sd, ts.passed)
        out[week] = _WeekModel(model, mean, sd)
    return out


def weekly_chances(offering: SimulatedOffering, models: dict[int, _WeekModel]) -> pd.DataFrame:
    """The panel the estimate reads: ``student`` (Moodle user id), ``week``, ``chance``, one
    scoring at the end of each week."""
    off = offering.to_offering()
    frames = []
    for week, model in models.items():
        as_of = off.course_start + pd.Timedelta(weeks=week)
        features = compute_features(
            off.events, off.roster, as_of, off.course_start, off.course_end,
            course_modules=off.course_modules,
        )  # fmt: skip
        frames.append(
            pd.DataFrame(
                {
                    "student": features.index.to_numpy(),
                    "week": float(week),
                    "chance": model.chance(features),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def choose_contacts(
    chances: pd.DataFrame, weeks: Sequence[float], seed: int, share: float = 0.5
) -> dict[int, float]:
    """At each of ``weeks``, a random ``share`` of the students under 50 % at the scoring just
    before, not contacted yet."""
    rng = np.random.default_rng([seed, 16])
    chosen: dict[int, float] = {}
    for when in weeks:
        shown = chances.loc[chances["week"] == np.floor(when)].sort_values("student")
        draw = rng.random(len(shown))
        for student, chance, u in zip(shown["student"], shown["chance"], draw, strict=True):
            if chance < 0.5 and u < share and int(student) not in chosen:
                chosen[int(student)] = float(when)
    return chosen


@dataclass(frozen=True)
class ContactWorld:
    seed: int
    contacts: dict[int, float]  # Moodle user id -> contact week
    without: SimulatedOffering
    with_effect: SimulatedOffering
    chances_without: pd.DataFrame
    chances_with: pd.DataFrame

    def chances(self, effect: bool) -> pd.DataFrame:
        return self.chances_with if effect else self.chances_without

    def offering(self, effect: bool) -> SimulatedOffering:
        return self.with_effect if effect else self.without

    def outcomes(self, effect: bool) -> pd.DataFrame:
        """Final grades out of 20 (a missing total counts 0, as in training) and pass/fail."""
        off = self.offering(effect)
        grade = (off.grades["course_total"].fillna(0.0) / off.spec.grademax * SCALE).to_numpy()
        return pd.DataFrame(
            {
                "student": off.grades["userid"].to_numpy(),
                "grade": grade,
                "passed": (grade >= PASS_MARK).astype(np.float64),
            }
        )

    def true_chance_effect(self, horizon_weeks: float) -> float:
        """Mean over the contacted of (change with the effect) - (change without), each change
        from the scoring before the contact to the one before ``contact + horizon``."""

        def change(panel: pd.DataFrame, student: int, week: float) -> float:
            mine = panel.loc[panel["student"] == student].set_index("week")["chance"]
            return float(mine[np.floor(week + horizon_weeks)] - mine[np.floor(week)])

        return float(
            np.mean(
                [
                    change(self.chances_with, s, w) - change(self.chances_without, s, w)
                    for s, w in self.contacts.items()
                ]
            )
        )

    def true_final_effect(self, column: str) -> float:
        """Mean over the contacted of the outcome with the effect minus without."""
        a = self.outcomes(False).set_index("student")[column]
        b = self.outcomes(True).set_index("student")[column]
        ids = list(self.contacts)
        return float(np.mean(b.loc[ids].to_numpy() - a.loc[ids].to_numpy()))


@cache
def contact_world(
    seed: int,
    *,
    n_students: int = 100,
    n_past: int = 3,
    weeks: tuple[float, ...] = (3.5, 6.5),
    engagement: float = ENGAGEMENT,
    grade: float = GRADE_POINTS,
) -> ContactWorld:
    """The two runs of one seed: ``n_past`` offerings train the scorer, the last one (finished,
    with final grades) holds the contacts."""
    plain = simulate_course(n_past=n_past + 1, n_students=n_students, seed=seed,
                            current_progress=None)  # fmt: skip
    models = _week_models([o.to_offering() for o in plain.offerings[:-1]])
    chances = weekly_chances(plain.offerings[-1], models)
    contacts = choose_contacts(chances, weeks, seed)
    planted = simulate_course(
        n_past=n_past + 1, n_students=n_students, seed=seed, current_progress=None,
        contacts=ContactPlan(contacts, engagement=engagement, grade=grade),
    )  # fmt: skip
    # A plan whose effects are 0 gives the plain course (tests/simulation checks it byte for
    # byte): only the record of who was contacted differs.
    without = dataclasses.replace(plain.offerings[-1], contacts=planted.offerings[-1].contacts)
    return ContactWorld(
        seed=seed,
        contacts=contacts,
        without=without,
        with_effect=planted.offerings[-1],
        chances_without=chances,
        chances_with=weekly_chances(planted.offerings[-1], models),
    )
