"""The course calendar (issue #13, items 4-6): dates from the CLI, the inferred term, as-of.

A CSV-only course has no dates; its term used to be the span of its events so far, so every
mid-term scoring trained and predicted at the end-of-term checkpoint. After its end, a course
scored later kept aging (days since last activity) and its pass chances collapsed. These tests
go through the real CLI on SQLite and PostgreSQL, on small seeded simulated courses.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from lti_app.cli import main
from lti_app.config import Settings
from lti_app.models import Course, MoodleSite, Person, Prediction
from lti_app.services.course_data import store_simulated_course
from lti_app.services.scoring import score_course
from simulation.course import SimulatedOffering, simulate_course
from simulation.exports import grades_export_csv, log_report_csv
from tests.conftest import Databases
from tests.lti_app.lti.scored_course import FAST
from tests.lti_app.test_sync import make_settings

FAST_ML = """
[ml]
regressors = ["ridge"]
classifiers = ["logistic"]
bootstrap_samples = 100
permutation_repeats = 3
mc_dropout_passes = 10
"""
TZ = "Europe/Paris"


def cli(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", settings.source, *args], input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def local(moment: pd.Timestamp) -> str:
    """A moment as the CLI takes it: date and time in Moodle's zone."""
    return moment.tz_convert(TZ).strftime("%Y-%m-%dT%H:%M")


def import_offering(settings: Settings, tmp: Path, off: SimulatedOffering, past: list[int]) -> int:
    """One offering in by CSV only, as an admin without web services would: `course add`,
    `import-logs`, `import-grades`. Returns the course id."""
    args = ["course", "add", "--site", "https://sim.example.org", "--moodle-id", str(off.courseid)]
    for p in past:
        args += ["--past", str(p)]
    course_id = int(ok(cli(settings, *args)).split()[1].rstrip(":"))
    logs, grades = tmp / f"logs-{off.courseid}.csv", tmp / f"grades-{off.courseid}.csv"
    logs.write_text(log_report_csv(off, "en", TZ), "utf-8")
    # The simulator's gradebook export of a running offering fails (its grades frame has no
    # item columns), so the running one is exported with zeros everywhere: the import needs it
    # for the roster, and a running course's grades never feed its own predictions.
    exported = off
    if off.is_current:
        items = [a.itemid for a in off.spec.activities if a.itemid is not None]
        zeros = off.grades[["userid"]].assign(**{str(i): 0.0 for i in items}, course_total=0.0)
        exported = dataclasses.replace(off, grades=zeros.rename(columns={str(i): i for i in items}))
    grades.write_text(grades_export_csv(exported, "en"), "utf-8")
    ok(cli(settings, "import-logs", str(logs), "--course", str(course_id)))
    ok(cli(settings, "import-grades", str(grades), "--course", str(course_id),
           "--grade-max", str(off.spec.grademax)))  # fmt: skip
    return course_id


def csv_rows(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_csv_only_course_trains_at_its_mid_term_checkpoint(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """Item 4: several offerings imported by CSV only. Mid-term, with nothing set, the term's
    end is inferred from the past offerings (progress near 50%, not 100%); with the dates set
    by `course update`, training uses the 50% checkpoint and predicts what the same offerings
    stored with their dates predict. Item 6: `predict --csv --as-of` lists one row per
    student, however often it runs."""
    # Seed 34: no two students of one offering share a name (namesakes across offerings, as on
    # a real site); `test_namesakes_in_one_offering_are_said_not_guessed` covers the other case.
    simulated = simulate_course(n_past=3, n_students=30, seed=34, current_progress=0.5)
    current_off = simulated.current
    assert current_off is not None
    assert current_off.now is not None
    mid = current_off.now
    settings = make_settings(tmp_path / "csv", databases.new_url(backend), extra=FAST_ML)
    ok(cli(settings, "db", "upgrade"))
    ok(cli(settings, "site", "add", "--url", "https://sim.example.org", "--token-stdin",
           stdin="t0ken\n"))  # fmt: skip
    past = [import_offering(settings, tmp_path, off, []) for off in simulated.past]
    current = import_offering(settings, tmp_path, current_off, past)

    inferred = ok(cli(settings, "train", "--course", str(current), "--as-of", local(mid)))
    progress = int(inferred.split("progress through the term: ")[1].split("%")[0])
    assert 35 <= progress <= 60, inferred  # was 100%: the events so far taken as the term
    assert "no end date: the term is taken to end on" in inferred

    for course_id, off in zip([*past, current], simulated.offerings, strict=True):
        ok(cli(settings, "course", "update", "--course", str(course_id),
               "--start", local(off.start), "--end", local(off.end)))  # fmt: skip
    dated = ok(cli(settings, "train", "--course", str(current), "--as-of", local(mid)))
    assert "progress through the term: 50%" in dated
    assert "no end date" not in dated
    for _ in range(2):
        listed = cli(settings, "predict", "--course", str(current), "--csv", "--as-of", local(mid))
        ok(listed)
        rows = csv_rows(listed.stdout)
        # One row per student, every student linked to their Moodle id from the log.
        assert len(rows) == len(current_off.roster)
        assert len({r["moodle_user_id"] for r in rows}) == len(rows)

    # The same offerings stored with their dates (as a web-service sync has them), scored as of
    # the same moment: the same predictions, student by student.
    direct = make_settings(tmp_path / "dated", databases.new_url(backend), extra=FAST_ML)
    ok(cli(direct, "db", "upgrade"))
    engine = create_engine(direct.database_url)
    try:
        with Session(engine) as session:
            site = MoodleSite(base_url="https://sim.example.org")
            session.add(site)
            session.flush()
            course, _ = store_simulated_course(session, site, simulated)
            outcome = score_course(
                session, course, settings=FAST, model_root=tmp_path / "m", now=mid.to_pydatetime()
            )
            assert outcome.progress == pytest.approx(0.5, abs=0.01)
            stored = {
                str(uid): p
                for uid, p in session.execute(
                    select(Person.moodle_user_id, Prediction).join(
                        Prediction, Prediction.person_id == Person.id
                    )
                )
            }
    finally:
        engine.dispose()
    assert set(stored) == {r["moodle_user_id"] for r in rows}
    for r in rows:
        p = stored[r["moodle_user_id"]]
        assert float(r["grade"]) == pytest.approx(p.predicted_grade, abs=1e-9)
        assert float(r["p_pass"]) == pytest.approx(p.pass_probability, abs=1e-9)

    report = ok(cli(settings, "evaluate", "--course", str(current), "--as-of", local(mid)))
    assert "50% of the term" in report
    assert '"r2"' in report


def test_namesakes_in_one_offering_are_said_not_guessed(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """Students of one offering share a name (seed 21, third offering: two "Eva Henry", two
    "Yanis Roux"). A log download names them by id, a gradebook export by name and email only: the
    grades cannot be told apart, so none is linked to either's events, and the import says so
    by name instead of crediting one with the other's grade."""
    simulated = simulate_course(n_past=3, n_students=30, seed=21, current_progress=0.5)
    settings = make_settings(tmp_path / "csv", databases.new_url(backend), extra=FAST_ML)
    ok(cli(settings, "db", "upgrade"))
    ok(cli(settings, "site", "add", "--url", "https://sim.example.org", "--token-stdin",
           stdin="t0ken\n"))  # fmt: skip
    off = simulated.offerings[2]
    names = off.users.drop_duplicates("userid").fullname
    shared = sorted(set(names[names.duplicated()]))
    assert shared == ["Eva Henry", "Yanis Roux"]
    added = ok(
        cli(settings, "course", "add", "--site", "https://sim.example.org", "--moodle-id",
            str(off.courseid))
    )  # fmt: skip
    course_id = int(added.split()[1].rstrip(":"))
    logs, grades = tmp_path / "logs.csv", tmp_path / "grades.csv"
    logs.write_text(log_report_csv(off, "en", TZ), "utf-8")
    grades.write_text(grades_export_csv(off, "en"), "utf-8")
    ok(cli(settings, "import-logs", str(logs), "--course", str(course_id)))
    said = ok(cli(settings, "import-grades", str(grades), "--course", str(course_id),
                  "--grade-max", str(off.spec.grademax)))  # fmt: skip
    assert "Warning: 2 name(s) belong to several people" in said
    assert all(name in said for name in shared)


def test_bad_dates_are_one_error_line(backend: str, databases: Databases, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    ok(cli(settings, "db", "upgrade"))
    ok(cli(settings, "site", "add", "--url", "https://m.example.org", "--token-stdin",
           stdin="t0ken\n"))  # fmt: skip
    ok(cli(settings, "course", "add", "--site", "https://m.example.org", "--moodle-id", "7"))
    for args in (
        ["train", "--course", "1", "--as-of", "next tuesday"],
        ["predict", "--course", "1", "--as-of", "2025-13-01"],
        ["evaluate", "--course", "1", "--as-of", "soon"],
        ["course", "update", "--course", "1", "--start", "2025-02-01", "--end", "2025-01-01"],
    ):
        result = cli(settings, *args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: "), args
        assert result.output.count("\n") == 1, result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("days_after", [90, 180, 365])
def test_scoring_after_the_end_gives_the_predictions_of_the_end(
    db_session: Session, tmp_path: Path, days_after: int
) -> None:
    """Item 5: for any as-of date after the end, the stored predictions are those at the end
    (they collapsed to P(pass) 0.000 a year later), and a rescoring replaces, not adds."""
    simulated = simulate_course(n_past=3, n_students=30, seed=5, current_progress=1.0)
    site = MoodleSite(base_url="https://sim.example.org")
    db_session.add(site)
    db_session.flush()
    course, _ = store_simulated_course(db_session, site, simulated)
    assert course.end_at is not None
    end = course.end_at

    def scored(when: pd.Timestamp) -> dict[int, tuple[object, ...]]:
        outcome = score_course(
            db_session, course, settings=FAST, model_root=tmp_path, now=when.to_pydatetime()
        )
        assert outcome.status == "scored", outcome.message
        assert outcome.as_of == end
        assert outcome.progress == 1.0
        rows = db_session.scalars(select(Prediction).where(Prediction.course_id == course.id)).all()
        assert len(rows) == len(simulated.current.roster)  # type: ignore[union-attr]  # one scoring
        return {
            p.person_id: (p.predicted_grade, p.grade_lower, p.pass_probability, p.features)
            for p in rows
        }

    at_end = scored(pd.Timestamp(end))
    later = scored(pd.Timestamp(end) + pd.Timedelta(days=days_after))
    assert later == at_end
    assert db_session.get_one(Course, course.id).end_at == end


def test_the_dashboard_term_is_the_scoring_term(db_session: Session, tmp_path: Path) -> None:
    """Items 4-5 on the page: without end dates, the end the dashboard states (from two
    aggregates per course) is the end the scoring inferred from the past offerings; after the
    end, the page says the estimates are as of the end."""
    from lti_app.services.courses import shown_term
    from lti_app.web.views.course import term_view

    simulated = simulate_course(n_past=3, n_students=30, seed=34, current_progress=0.5)
    site = MoodleSite(base_url="https://sim.example.org")
    db_session.add(site)
    db_session.flush()
    course, past = store_simulated_course(db_session, site, simulated)
    for c in (course, *past):
        c.start_at = c.end_at = None  # as a CSV-only import leaves them
    db_session.flush()
    assert simulated.current is not None
    assert simulated.current.now is not None
    outcome = score_course(
        db_session,
        course,
        settings=FAST,
        model_root=tmp_path,
        now=simulated.current.now.to_pydatetime(),
    )
    assert outcome.end_inferred
    assert outcome.term_end is not None
    term = shown_term(db_session, course)
    assert term is not None
    assert term.end_inferred
    assert term.end == pd.Timestamp(outcome.term_end)
    shown = term_view(db_session, course, outcome.as_of.isoformat())
    assert shown is not None
    assert (shown["end_inferred"], shown["ended"]) == (True, False)

    course.end_at = (pd.Timestamp(outcome.term_end) - pd.Timedelta(days=30)).to_pydatetime()
    later = score_course(
        db_session,
        course,
        settings=FAST,
        model_root=tmp_path,
        now=(pd.Timestamp(course.end_at) + pd.Timedelta(days=365)).to_pydatetime(),
    )
    assert later.term_ended
    shown = term_view(db_session, course, later.as_of.isoformat())
    assert shown is not None
    assert (shown["end_inferred"], shown["ended"]) == (False, True)
    assert shown["end"] == later.term_end
