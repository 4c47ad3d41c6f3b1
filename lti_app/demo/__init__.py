"""`arche-predict demo`: the whole pipeline on one machine, with a simulated Moodle.

It generates a simulated course (past offerings with final grades and a current one in the
middle of its term, dated so that "now" is today), serves it as a Moodle-compatible web service,
syncs it through the real `ws` path, trains and predicts, registers a development LTI platform
and serves the tool. Only a configuration with `demo.enabled = true` can start it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lti_app.config import ConfigError, Settings
from lti_app.crypto import SecretBox
from lti_app.db import session_scope, utcnow
from lti_app.demo.moodle import SimulatedMoodle
from lti_app.demo.platform import DemoPlatform, DemoUser
from lti_app.models import ToolKey
from lti_app.services.courses import add_course, link_past_offering
from lti_app.services.lti_keys import rotate_key
from lti_app.services.lti_registry import add_platform
from lti_app.services.scoring import ScoringOutcome, score_course
from lti_app.services.sites import upsert_site
from lti_app.tasks import run_course_sync
from simulation.course import CourseSpec, SimulatedCourse, simulate_course


@dataclass(frozen=True)
class DemoSetup:
    moodle: SimulatedMoodle
    moodle_url: str
    platform: DemoPlatform
    platform_url: str
    current_course_id: int
    scoring: ScoringOutcome


def register_platform(
    session: Session, box: SecretBox, platform: DemoPlatform, *, name: str, site_url: str
) -> None:
    """Register a demo platform with the tool, as an admin would register Moodle, and give the
    tool a signing key if it has none yet (the demo and the benchmarks launch through it)."""
    add_platform(
        session,
        box,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=[platform.deployment_id],
        auth_login_url=platform.auth_login_url,
        auth_token_url=platform.auth_token_url,
        key_set_url=platform.key_set_url,
        name=name,
        site_url=site_url,
    )
    if session.scalar(select(ToolKey.id).limit(1)) is None:
        rotate_key(session, box)


def simulated_course_for_today(settings: Settings) -> SimulatedCourse:
    """A course whose current offering is halfway through its term today."""
    demo = settings.demo
    weeks = CourseSpec().n_weeks
    first = (
        pd.Timestamp(utcnow()).tz_convert("Europe/Paris")
        - pd.Timedelta(weeks=weeks * demo.progress)
        - pd.DateOffset(years=demo.past_offerings)
    ).normalize()
    spec = CourseSpec(first_start=pd.Timestamp(first))
    return simulate_course(
        n_past=demo.past_offerings,
        n_students=demo.students,
        seed=demo.seed,
        current_progress=demo.progress,
        spec=spec,
    )


def prepare(settings: Settings, factory: sessionmaker[Session]) -> DemoSetup:
    """Serve the simulated Moodle, sync and score through the real paths, register the platform."""
    if not settings.demo.enabled:
        raise ConfigError(
            f"{settings.source}: demo.enabled is false; the demo runs only with a demo config "
            "(`arche-predict config init --demo PATH`)"
        )
    box = SecretBox.from_settings(settings)
    simulated = simulated_course_for_today(settings)
    current = simulated.current
    assert current is not None
    moodle = SimulatedMoodle(simulated)
    moodle_url = moodle.start("127.0.0.1", settings.demo.moodle_port)

    with session_scope(factory) as session:
        upsert_site(session, box, moodle_url, name="ARCHE (demo)", token=moodle.token)
        past_ids = [add_course(session, moodle_url, off.courseid).id for off in simulated.past]
        current_row = add_course(session, moodle_url, current.courseid)
        for past_id in past_ids:
            link_past_offering(session, current_row, past_id)
        course_ids = [*past_ids, current_row.id]
        current_id = current_row.id
    for course_id in course_ids:  # the real web-service sync, page by page
        outcome = run_course_sync(settings, factory, course_id, trigger="demo")
        if outcome.status != "succeeded":
            raise RuntimeError(f"demo sync failed: {outcome.error_message}")
    with session_scope(factory) as session:
        scoring = score_course(
            session,
            session.get_one(type(current_row), current_id),
            settings=settings.ml,
            model_root=settings.model_root,
            # No date: as of the newest synced event, as the scheduler's "Sync now" scores, so
            # a later sync with no new event stores the same predictions (a fixed day here
            # and the clock there once moved the at-risk count from 27 to 24).
        )

    students = current.roster.sort_values("userid")
    teacher = current.users[current.users["role"] != "student"].iloc[0]
    learner = students.iloc[0]
    users = {
        "teacher": DemoUser(
            int(teacher["userid"]), str(teacher["fullname"]), str(teacher["email"]), "teacher"
        ),
        "learner": DemoUser(
            int(learner["userid"]), str(learner["fullname"]), str(learner["email"]), "learner"
        ),
        # Moodle's own administrator account (user 2), not enrolled in the course.
        "admin": DemoUser(2, "Admin User", "admin@example.invalid", "admin"),
    }
    tool_url = settings.app.public_url or f"http://{settings.app.host}:{settings.app.port}"
    platform = DemoPlatform(
        tool_url=tool_url,
        course_id=current.courseid,
        course_label=f"{current.spec.shortname}-{current.start.year}",
        course_title=f"{current.spec.fullname} ({current.start.year})",
        users=users,
    )
    platform_url = platform.start("localhost", settings.demo.platform_port)
    with session_scope(factory) as session:
        register_platform(session, box, platform, name="ARCHE (demo)", site_url=moodle_url)
    return DemoSetup(moodle, moodle_url, platform, platform_url, current_id, scoring)
