"""A simulated course stored behind a config file, for the CLI tests that train on it.

The CLI tests (train/predict/evaluate, reports, CSV export, grade states) each need the same
thing: a config with fast ML settings on the embedded SQLite, the schema, and a simulated
course with its past offerings. One helper builds it, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from lti_app import migrate
from lti_app.config import Settings, load_settings
from lti_app.crypto import generate_key
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import MoodleSite
from lti_app.services.course_data import store_simulated_course
from simulation.course import SimulatedCourse


def fast_config(tmp: Path, *, bootstrap_samples: int = 100) -> tuple[Path, Settings]:
    """A config file under `tmp` (instance folder, secrets, fast model settings) and its
    settings."""
    cfg = tmp / "config.toml"
    cfg.write_text(
        f"""
[app]
secret_key = "s"
instance_path = "{tmp / "instance"}"
[security]
encryption_key = "{generate_key()}"
[ml]
regressors = ["ridge"]
classifiers = ["logistic"]
bootstrap_samples = {bootstrap_samples}
permutation_repeats = 3
mc_dropout_passes = 10
""",
        encoding="utf-8",
    )
    return cfg, load_settings(cfg, environ={})


def store_course(settings: Settings, simulated: SimulatedCourse) -> int:
    """Migrate the settings' database and store the simulated course (with its past
    offerings) on a site of its own; the current offering's course id."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with session_scope(make_session_factory(engine)) as session:
            site = MoodleSite(base_url="https://sim.example.org")
            session.add(site)
            session.flush()
            current, _ = store_simulated_course(session, site, simulated)
            return current.id
    finally:
        engine.dispose()
