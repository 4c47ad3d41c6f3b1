"""The simulator writes Moodle's own shapes, deterministically, with learnable signal."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.dataset import final_grades_from_grade_items
from ml.events import EVENT_INFO, STANDARD_LOG_COLUMNS
from simulation.course import SimulatedCourse, simulate_course
from simulation.exports import grade_items_json, grades_export_csv, log_report_csv, write_offering
from tests.ml.conftest import FIXTURES

MOODLE_TIME = re.compile(r"^([1-9]|[12]\d|3[01])/\d\d/\d\d, \d\d:\d\d:\d\d$")


def _read_report(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text.removeprefix("\ufeff")), dtype=str, keep_default_na=False)


def test_same_seed_same_course_other_seed_other_course() -> None:
    a = simulate_course(2, 20, seed=3)
    b = simulate_course(2, 20, seed=3)
    c = simulate_course(2, 20, seed=4)
    for x, y in zip(a.offerings, b.offerings, strict=True):
        pd.testing.assert_frame_equal(x.log, y.log)
        pd.testing.assert_frame_equal(x.grades, y.grades)
    assert not a.offerings[0].log.equals(c.offerings[0].log)


def test_standard_log_rows_have_moodles_columns_and_values(course: SimulatedCourse) -> None:
    log = course.past[0].log
    assert list(log.columns) == ["id", *STANDARD_LOG_COLUMNS]
    assert log["id"].is_monotonic_increasing
    assert log["id"].is_unique
    assert log["timecreated"].is_monotonic_increasing
    for name, crud, edulevel in (
        log[["eventname", "crud", "edulevel"]].drop_duplicates().itertuples(index=False)
    ):
        info = EVENT_INFO[name]
        assert (crud, edulevel) == (info.crud, info.edulevel)
    module = log["contextlevel"] == 70
    assert (log.loc[~module, "contextinstanceid"] == log["courseid"][~module]).all()
    names = set(log["eventname"].astype(str))
    for required in (
        "\\core\\event\\course_viewed",
        "\\mod_resource\\event\\course_module_viewed",
        "\\mod_page\\event\\course_module_viewed",
        "\\mod_quiz\\event\\attempt_submitted",
        "\\mod_assign\\event\\assessable_submitted",
        "\\mod_forum\\event\\post_created",
        "\\mod_forum\\event\\discussion_viewed",
    ):
        assert required in names


def test_current_offering_stops_now_and_has_no_grades(course: SimulatedCourse) -> None:
    cur = course.current
    assert cur is not None
    assert cur.now is not None
    assert cur.log["timecreated"].max() <= cur.now.timestamp()
    assert cur.grades["course_total"].isna().all()
    assert len(course.past) == 9


def test_rhythms_deadlines_and_traits_show_in_the_log(course: SimulatedCourse) -> None:
    off = course.past[2]
    t = pd.to_datetime(off.log["timecreated"], unit="s", utc=True).dt.tz_convert("Europe/Paris")
    by_hour = t.dt.hour.value_counts()
    assert by_hour.loc[[3, 4]].sum() < by_hour.loc[[10, 15]].sum() / 5  # few nights
    weekend = t.dt.day_of_week >= 5
    assert weekend.mean() < 2 / 7  # quieter weekends
    counts = off.log[off.log["userid"].isin(off.roster["userid"])].groupby("userid").size()
    traits = off.traits.set_index("userid")
    corr = np.corrcoef(traits.loc[counts.index, "engagement"], np.log(counts))[0, 1]
    assert corr > 0.5
    # dropouts stop acting
    dropped = traits["dropout_time"].dropna()
    for uid, when in dropped.items():
        mine = off.log[(off.log["userid"] == uid)]
        assert (mine["timecreated"] < when.timestamp()).all()


def test_grades_follow_traits_and_signal_can_be_removed() -> None:
    strong = simulate_course(3, 80, seed=11, current_progress=None)
    none = simulate_course(3, 80, seed=11, current_progress=None, signal=0.0)
    for sim, low, high in ((strong, 0.6, 1.0), (none, -0.25, 0.25)):
        # among graded students: whether a grade exists at all still follows engagement
        ability = np.concatenate([o.traits["ability"] for o in sim.offerings])
        total = np.concatenate([o.grades["course_total"] for o in sim.offerings])
        graded = ~np.isnan(total)
        assert low < np.corrcoef(ability[graded], total[graded])[0, 1] < high


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_log_report_csv_has_moodles_shape(course: SimulatedCourse, lang: str) -> None:
    real = (FIXTURES / f"logs_export_{lang}.csv").read_text("utf-8")
    ours = log_report_csv(course.past[0], lang)  # type: ignore[arg-type]
    assert ours.startswith("\ufeff")
    assert real.startswith("\ufeff")
    assert ours.splitlines()[0] == real.splitlines()[0]  # byte-identical header
    df, ref = _read_report(ours), _read_report(real)
    assert df.iloc[:, 0].str.match(MOODLE_TIME).all()
    assert ref.iloc[:, 0].str.match(MOODLE_TIME).all()
    times = pd.to_datetime(df.iloc[:, 0], format="%d/%m/%y, %H:%M:%S")
    # newest first; local wall time may only step back by the hour repeated when DST ends
    steps = times.diff().dropna()
    assert (steps <= pd.Timedelta(0)).mean() > 0.99
    assert steps.max() <= pd.Timedelta(hours=1)
    # the same quoting rule as Moodle: a field is quoted iff it holds a space or comma
    for line in ours.splitlines()[1:50]:
        fields = next(csv.reader([line]))
        raw = line
        for f in fields:
            quoted = '"' + f.replace('"', '""') + '"'
            needs = any(c in f for c in ' ,"')
            assert raw.startswith(quoted if needs else f), (f, raw)
            raw = raw[len(quoted if needs else f) + 1 :]
    # every translated (component, event name) pair is one the real Moodle wrote
    pairs = set(map(tuple, df.iloc[:, [4, 5]].to_numpy().tolist()))
    real_pairs = set(map(tuple, ref.iloc[:, [4, 5]].to_numpy().tolist()))
    # not in the recorded course (it has no file resource and no resubmission)
    unrecorded = {
        ("Online text submissions", "Submission updated."),
        ("Remise de textes en ligne", "Travail de devoir modifié"),
        ("File", "Course module viewed"),
        ("Fichier", "Module de cours consulté"),
    }
    assert pairs - unrecorded <= real_pairs
    assert len(pairs & real_pairs) >= 15
    contexts = df.iloc[:, 3]
    prefix = ("Course: ", "Page: ", "File: ", "URL: ", "Forum: ", "Quiz: ", "Assignment: ")
    if lang == "fr":
        prefix = ("Cours: ", "Page: ", "Fichier: ", "URL: ", "Forum: ", "Test: ", "Devoir: ")
    assert contexts.str.startswith(prefix).all()
    assert df["Description"].str.match(r"^The (user|attempt) with id").all()


def test_log_report_descriptions_name_the_ids(course: SimulatedCourse) -> None:
    off = course.past[0]
    df = _read_report(log_report_csv(off, "en"))
    newest = off.log.iloc[-1]
    assert f"The user with id '{newest['userid']}'" in df["Description"].iloc[0] or (
        f"by user with id {newest['userid']}" in df["Description"].iloc[0]
    )
    viewed = df[df["Event name"] == "Course viewed"]["Description"]
    assert viewed.str.fullmatch(
        rf"The user with id '\d+' viewed the course with id '{off.courseid}'\."
    ).all()


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_grades_export_has_moodles_shape(course: SimulatedCourse, lang: str) -> None:
    real = (FIXTURES / f"grades_export_{lang}.csv").read_text("utf-8")
    ours = grades_export_csv(course.past[0], lang, downloaded=1795387817)  # type: ignore[arg-type]
    real_head = next(csv.reader([real.splitlines()[0]]))
    head = next(csv.reader([ours.splitlines()[0]]))
    assert head[:6] == real_head[:6]
    assert head[-2:] == real_head[-2:]
    assert ours.splitlines()[0].split(",")[:6] == real.splitlines()[0].split(",")[:6]
    df = pd.read_csv(io.StringIO(ours), dtype=str)
    grades = df.iloc[:, 6:-1]
    assert grades.stack().str.fullmatch(r"-|\d+\.\d\d").all()
    assert (grades == "-").to_numpy().any()  # somebody skipped something
    assert len(df) == len(course.past[0].roster)


def test_grade_items_json_has_the_web_service_shape(course: SimulatedCourse) -> None:
    real = json.loads((FIXTURES / "gradereport_user_get_grade_items.json").read_text("utf-8"))
    ours = grade_items_json(course.past[0])
    assert set(ours) == set(real)
    assert set(ours["usergrades"][0]) == set(real["usergrades"][0])
    real_course = next(i for i in real["usergrades"][0]["gradeitems"] if i["itemtype"] == "course")
    our_course = next(i for i in ours["usergrades"][0]["gradeitems"] if i["itemtype"] == "course")
    assert set(our_course) <= set(real_course)
    real_mod = next(i for i in real["usergrades"][0]["gradeitems"] if i["itemtype"] == "mod")
    our_mod = next(i for i in ours["usergrades"][0]["gradeitems"] if i["itemtype"] == "mod")
    assert set(our_mod) <= set(real_mod)
    totals = final_grades_from_grade_items(ours).set_index("userid")["graderaw"]
    expected = course.past[0].grades.set_index("userid")["course_total"]
    pd.testing.assert_series_equal(totals, expected.reindex(totals.index), check_names=False)
    parsed_real = final_grades_from_grade_items(real)
    assert len(parsed_real) == 40
    assert parsed_real["grademax"].gt(0).all()


def test_generation_is_vectorised_enough_to_scale() -> None:
    """~300k events in a few seconds keeps 10M events within a benchmark's minutes."""
    import time

    t0 = time.perf_counter()
    sim = simulate_course(1, 1000, seed=5, current_progress=None)
    elapsed = time.perf_counter() - t0
    n = len(sim.offerings[0].log)
    assert n > 200_000
    assert n / elapsed > 100_000


def test_write_offering_writes_every_moodle_shape(course: SimulatedCourse, tmp_path: Path) -> None:
    off = course.past[0]
    write_offering(off, str(tmp_path / "demo"))
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert names == {
        "standard_log.csv",
        "logs_export_en.csv",
        "logs_export_fr.csv",
        "grades_export_en.csv",
        "grades_export_fr.csv",
        "gradereport_user_get_grade_items.json",
        "users.csv",
    }
    rows = pd.read_csv(tmp_path / "demo" / "standard_log.csv")
    assert len(rows) == len(off.log)
    assert list(rows.columns) == list(off.log.columns)
