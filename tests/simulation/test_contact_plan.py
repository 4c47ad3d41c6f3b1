"""A teacher's contacts planted in a simulated course (#16 item 7): no plan and a plan without
effect give the same course byte for byte; an effect changes the contacted students from their
contact on, and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulation.course import ContactPlan, SimulatedCourse, SimulatedOffering, simulate_course


def _sim(progress: float | None = None, plan: ContactPlan | None = None) -> SimulatedCourse:
    """Two offerings of 40 students or so; the plan goes into the second (the running one when
    ``progress`` is given, else a finished one with final grades)."""
    past = 1 if progress is not None else 2
    return simulate_course(past, 40, seed=5, current_progress=progress, contacts=plan)


def _same(a: SimulatedOffering, b: SimulatedOffering) -> None:
    for frame in ("log", "grades", "users", "traits"):
        pd.testing.assert_frame_equal(getattr(a, frame), getattr(b, frame))
    assert (a.start, a.end, a.now) == (b.start, b.end, b.now)


def _contacts(off: SimulatedOffering, k: int = 10) -> dict[int, float]:
    ids = off.roster["userid"].to_numpy()[:k]
    return {int(u): 3.5 + (i % 3) for i, u in enumerate(ids)}


@pytest.mark.parametrize("progress", [None, 0.7])
def test_a_plan_without_effect_is_the_course_without_plan(progress: float | None) -> None:
    plain = _sim(progress)
    contacts = _contacts(plain.offerings[-1])
    idle = _sim(progress, ContactPlan(contacts))
    for a, b in zip(plain.offerings, idle.offerings, strict=True):
        _same(a, b)
    assert plain.offerings[-1].contacts.empty
    recorded = idle.offerings[-1].contacts
    assert dict(zip(recorded["userid"], recorded["week"], strict=True)) == pytest.approx(contacts)
    start = idle.offerings[-1].start
    assert (recorded["time"] - start == pd.to_timedelta(recorded["week"] * 7, unit="D")).all()
    assert idle.offerings[0].contacts.empty  # only the last offering


def test_an_effect_changes_the_contacted_after_their_contact_and_nothing_else() -> None:
    plain = _sim()
    off = plain.offerings[-1]
    contacts = _contacts(off)
    planted = _sim(None, ContactPlan(contacts, engagement=1.5, grade=12.0))
    _same(plain.offerings[0], planted.offerings[0])
    new = planted.offerings[-1]
    pd.testing.assert_frame_equal(off.traits, new.traits)
    pd.testing.assert_frame_equal(off.users, new.users)
    start = int(off.start.timestamp())
    contacted = list(contacts)
    for uid in off.roster["userid"]:
        before = off.log.loc[off.log["userid"] == uid].drop(columns="id")
        after = new.log.loc[new.log["userid"] == uid].drop(columns="id")
        if uid not in contacts:
            pd.testing.assert_frame_equal(before.reset_index(drop=True),
                                          after.reset_index(drop=True))  # fmt: skip
            continue
        cut = start + contacts[uid] * 7 * 86_400
        pd.testing.assert_frame_equal(
            before.loc[before["timecreated"] < cut].reset_index(drop=True),
            after.loc[after["timecreated"] < cut].reset_index(drop=True),
        )
    extra = new.log.loc[new.log["userid"].isin(contacted)]
    usual = off.log.loc[off.log["userid"].isin(contacted)]
    assert len(extra) > len(usual)
    old = off.grades.set_index("userid")["course_total"]
    now = new.grades.set_index("userid")["course_total"]
    others = [u for u in old.index if u not in contacts]
    pd.testing.assert_series_equal(old.loc[others], now.loc[others])
    gain = (now.loc[contacted] - old.loc[contacted]).dropna()
    capped = np.minimum(old.loc[gain.index] + 12.0, off.spec.grademax) - old.loc[gain.index]
    np.testing.assert_allclose(gain.to_numpy(), capped.to_numpy(), atol=0.011)  # rounding
    assert now.loc[contacted].isna().equals(old.loc[contacted].isna())


def test_the_effect_is_more_work_after_the_contact() -> None:
    plain = simulate_course(n_past=1, n_students=200, seed=9, current_progress=None)
    off = plain.offerings[-1]
    contacts = {int(u): 4.0 for u in off.roster["userid"][::2]}
    planted = simulate_course(
        n_past=1, n_students=200, seed=9, current_progress=None,
        contacts=ContactPlan(contacts, engagement=1.0),
    ).offerings[-1]  # fmt: skip
    cut = int(off.start.timestamp()) + 4 * 7 * 86_400
    ids = list(contacts)

    def late(o: SimulatedOffering) -> int:
        log = o.log
        return int((log["userid"].isin(ids) & (log["timecreated"] >= cut)).sum())

    # free sessions times exp(0.55): graded work (a third of the events) is unchanged
    assert 1.3 < late(planted) / late(off) < 1.8


def test_a_plan_must_name_students_inside_the_term() -> None:
    off = _sim(0.5).offerings[-1]
    student = int(off.roster["userid"][0])
    teacher = int(off.users.loc[off.users["role"] != "student", "userid"].iloc[0])
    with pytest.raises(ValueError, match="not a student"):
        _sim(0.5, ContactPlan({teacher: 2.0}))
    with pytest.raises(ValueError, match="after the offering's now"):
        _sim(0.5, ContactPlan({student: 8.0}))
    with pytest.raises(ValueError, match="outside the term"):
        _sim(None, ContactPlan({student: -1.0}))
    with pytest.raises(ValueError, match="not negative"):
        ContactPlan({student: 2.0}, engagement=-0.5)
