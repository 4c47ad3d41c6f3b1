"""A scored course behind the real web app, for the prediction and dashboard benchmarks.

``scored_course`` stores a simulated course (past offerings with grades, a current offering in
the middle of its term) through ``store_simulated_course``, scores it with
``lti_app.services.scoring.score_course`` and registers the demo's development LTI platform
(``lti_app.demo.platform.DemoPlatform``). ``launch`` then runs the real LTI 1.3 launch (OIDC
login at the tool, the platform's signed id_token, the tool's launch endpoint), so every request
a benchmark makes afterwards goes through the app's own session and access checks. It works
with a Flask test client (in-process) and with a ``requests.Session`` against ``arche-predict
serve`` (``Server``), which starts gunicorn as an operator would.
"""

from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from lti_app.config import Settings, load_settings
from lti_app.crypto import SecretBox, generate_key
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.demo import register_platform
from lti_app.demo.platform import DemoPlatform, DemoUser
from lti_app.models import Course, Enrolment, ModelVersion, Person
from lti_app.services.course_data import STUDENT_ROLES, store_simulated_course
from lti_app.services.scoring import ScoringOutcome, score_course
from lti_app.services.sites import upsert_site
from lti_app.web.auth import SESSION_COOKIE
from simulation.course import SimulatedCourse, simulate_course

ROOT = Path(__file__).resolve().parents[1]
SITE_URL = "https://moodle.bench.example"
SEED = 11
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def plain_config(
    tmp: Path, url: str, name: str, extra: str = "", *, app: str = "", database: str = ""
) -> Path:
    """A configuration with fresh secrets, its own instance folder and the database at `url`;
    everything else default (the model search included), plus `app` and `database` lines in
    those sections and `extra` TOML sections."""
    path = tmp / f"{name}.toml"
    path.write_text(
        f"""
[app]
secret_key = "{generate_key()}"
instance_path = "{tmp / ("instance-" + name)}"
log_level = "WARNING"
{app}
[database]
url = "{url}"
{database}
[security]
encryption_key = "{generate_key()}"
{extra}
""",
        encoding="utf-8",
    )
    return path


def write_config(tmp: Path, url: str, port: int, *, classifier: str, regressor: str) -> Path:
    """A configuration for the app under test: one estimator per task (the what-if cost is the
    chosen estimator's, and the full search takes minutes), light evaluation settings (they
    change the model card, not the cost of a prediction), the default 100 MC-dropout passes."""
    return plain_config(
        tmp,
        url,
        f"bench-web-{uuid.uuid4().hex[:8]}",
        f"""[scheduler]
enabled = false
[ml]
regressors = ["{regressor}"]
classifiers = ["{classifier}"]
bootstrap_samples = 100
permutation_repeats = 3""",
        app=f'public_url = "http://127.0.0.1:{port}"\nport = {port}\nworkers = 2',
        database="pool_size = 10",
    )


def with_models(path: Path, *, classifier: str, regressor: str) -> Settings:
    """The same configuration with other estimators (rewrites the file the server reads)."""
    text = re.sub(r'regressors = \["\w+"\]', f'regressors = ["{regressor}"]', path.read_text())
    text = re.sub(r'classifiers = \["\w+"\]', f'classifiers = ["{classifier}"]', text)
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


@dataclass
class ScoredCourse:
    config: Path
    settings: Settings
    factory: sessionmaker[Session]
    course_id: int
    moodle_course_id: int
    students: list[int]  # person ids of the current offering's students
    platform: DemoPlatform
    simulated: SimulatedCourse
    store_s: float
    scorings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        current = self.simulated.current
        assert current is not None
        assert current.now is not None
        now: datetime = current.now.to_pydatetime()
        return now

    def rescore(self, *, classifier: str, regressor: str) -> ScoringOutcome:
        """Train and score again with other estimators: the active versions are retired first
        (else scoring reuses them, the training data being the same), and the predictions are
        dated one second after the previous ones, so they become the latest."""
        self.settings = with_models(self.config, classifier=classifier, regressor=regressor)
        with session_scope(self.factory) as session:
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.course_id == self.course_id)
                .values(active=False)
            )
        return self._score(classifier, regressor)

    def _score(self, classifier: str, regressor: str) -> ScoringOutcome:
        now = pd.Timestamp(self.now) + pd.Timedelta(seconds=len(self.scorings))
        t0 = time.perf_counter()
        with session_scope(self.factory) as session:
            outcome = score_course(
                session,
                session.get_one(Course, self.course_id),
                settings=self.settings.ml,
                model_root=self.settings.model_root,
                now=now.to_pydatetime(),
            )
        if outcome.status != "scored":
            raise RuntimeError(f"scoring the bench course: {outcome.status}: {outcome.message}")
        self.scorings.append(
            {
                "classifier": classifier,
                "regressor": regressor,
                "seconds": time.perf_counter() - t0,
                "predictions": outcome.predictions,
            }
        )
        return outcome


def scored_course(
    url: str,
    tmp: Path,
    *,
    n_students: int = 500,
    n_past: int = 2,
    classifier: str = "logistic",
    regressor: str = "ridge",
    port: int | None = None,
) -> ScoredCourse:
    """A simulated course stored and scored in the database at ``url``, and a platform to launch
    into it (the tool is expected at ``http://127.0.0.1:port``)."""
    port = port or free_port()
    config = write_config(tmp, url, port, classifier=classifier, regressor=regressor)
    settings = load_settings(config, environ={})
    simulated = simulate_course(n_past=n_past, n_students=n_students, seed=SEED)
    current = simulated.current
    assert current is not None
    factory = make_session_factory(make_engine(url, pool_size=settings.database.pool_size))
    box = SecretBox.from_settings(settings)
    t0 = time.perf_counter()
    with session_scope(factory) as session:
        site = upsert_site(session, box, SITE_URL, name="bench", token="bench")  # noqa: S106 - a fake site
        course, _ = store_simulated_course(session, site, simulated)
        course_id = course.id
    store_s = time.perf_counter() - t0
    with factory() as session:
        students = list(
            session.scalars(
                select(Enrolment.person_id)
                .where(Enrolment.course_id == course_id, Enrolment.role.in_(STUDENT_ROLES))
                .order_by(Enrolment.person_id)
            )
        )
        teacher = session.scalars(
            select(Person)
            .join(Enrolment, Enrolment.person_id == Person.id)
            .where(Enrolment.course_id == course_id, Enrolment.role == "editingteacher")
        ).first()
        assert teacher is not None
        assert teacher.moodle_user_id is not None
        learner = session.get_one(Person, students[0])
        assert learner.moodle_user_id is not None
        users = {
            "teacher": DemoUser(
                teacher.moodle_user_id, teacher.fullname, teacher.email or "", "teacher"
            ),
            "learner": DemoUser(
                learner.moodle_user_id, learner.fullname, learner.email or "", "learner"
            ),
        }
    platform = DemoPlatform(
        tool_url=f"http://127.0.0.1:{port}",
        course_id=current.courseid,
        course_label=f"{current.spec.shortname}-{current.start.year}",
        course_title=current.spec.fullname,
        users=users,
    )
    platform.start("127.0.0.1", 0)
    with session_scope(factory) as session:
        register_platform(session, box, platform, name="bench platform", site_url=SITE_URL)
    scored = ScoredCourse(
        config, settings, factory, course_id, current.courseid, students, platform, simulated,
        store_s,
    )  # fmt: skip
    scored._score(classifier, regressor)
    return scored


# --------------------------------------------------------------------------- the launch


@dataclass(frozen=True)
class Launched:
    """What a launched browser holds: the session cookie, the page's CSRF token, the launch
    token of the page it landed on, and where it landed."""

    cookie: str
    csrf: str
    token: str
    landing: str


def _platform_form(auth_url: str) -> dict[str, str]:
    with urllib.request.urlopen(auth_url, timeout=30) as answer:  # noqa: S310 - our platform
        form = answer.read().decode()
    fields = dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', form))
    if set(fields) != {"id_token", "state"}:
        raise RuntimeError(f"the platform did not answer with a launch form: {form[:300]}")
    return {k: html.unescape(v) for k, v in fields.items()}


def launch_test_client(client: Any, platform: DemoPlatform, who: str) -> Launched:
    """The launch through a Flask test client (base URL = the platform's tool URL)."""
    login = urlsplit(platform.login_url(who))
    resp = client.get(f"{login.path}?{login.query}")
    if resp.status_code != 302:
        raise RuntimeError(f"OIDC login answered {resp.status_code}")
    launched = client.post("/lti/launch", data=_platform_form(resp.headers["Location"]))
    if launched.status_code not in (302, 303):
        raise RuntimeError(f"launch answered {launched.status_code}: {launched.get_data()[:300]!r}")
    landing = launched.headers["Location"]
    page = client.get(landing)
    cookie = client.get_cookie(SESSION_COOKIE)
    return _launched(page.status_code, page.get_data(as_text=True), landing, cookie.value)


def launch_http(http: requests.Session, platform: DemoPlatform, who: str) -> Launched:
    """The launch over HTTP against a served tool, as a browser does it."""
    resp = http.get(platform.login_url(who), allow_redirects=False, timeout=30)
    if resp.status_code != 302:
        raise RuntimeError(f"OIDC login answered {resp.status_code}")
    tool = platform.tool_url
    launched = http.post(
        f"{tool}/lti/launch", data=_platform_form(resp.headers["Location"]),
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    if launched.status_code not in (302, 303):
        raise RuntimeError(f"launch answered {launched.status_code}: {launched.text[:300]}")
    landing = launched.headers["Location"]
    page = http.get(landing if landing.startswith("http") else tool + landing, timeout=30)
    return _launched(page.status_code, page.text, landing, http.cookies.get(SESSION_COOKIE) or "")


def _launched(status: int, page: str, landing: str, cookie: str) -> Launched:
    if status != 200:
        raise RuntimeError(f"the landing page answered {status}")
    csrf = _CSRF.search(page)
    if csrf is None or not cookie:
        raise RuntimeError("the landing page has no CSRF token, or no session cookie was set")
    token = parse_qs(urlsplit(landing).query).get("lt", [""])[0]
    return Launched(cookie, html.unescape(csrf.group(1)), token, urlsplit(landing).path)


# --------------------------------------------------------------------------- the server


class Server:
    """``arche-predict serve`` (gunicorn, gthread workers) in a subprocess, on the config's port."""

    def __init__(self, config: Path, port: int, workers: int = 2) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
            [sys.executable, "-m", "lti_app.cli", "--config", str(config), "serve",
             "--workers", str(workers), "--port", str(port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"arche-predict serve exited: {err[-2000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=10).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("arche-predict serve did not answer /healthz within 180 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
