"""Dashboards built once for every web worker (#19, item 5), over real launches on both
databases: a worker missing a page reads the build another worker kept, the scoring's own build
serves the first teacher after it, and either gives exactly the page a fresh build gives."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from lti_app.app import page_prebuilder
from lti_app.models import PageBuild
from lti_app.web.views import course as course_views
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.scored_course import score_course_2


def _page(env: LtiEnv, course_id: int, token: str) -> str:
    """The page, less what is signed per request with the time (the launch tokens in links)."""
    resp = env.client().get(f"/course/{course_id}", headers={"X-Launch-Token": token})
    assert resp.status_code == 200
    return re.sub(r"lt=[A-Za-z0-9_.\-]+", "lt=…", resp.get_data(as_text=True))


def _forget(env: LtiEnv) -> None:
    """This worker's own cache emptied: as another worker (or a restarted one) sees it."""
    cache = env.app.extensions["arche_predict"].get("page_cache")
    if cache is not None:
        cache.clear()


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the dashboard was built again")

    monkeypatch.setattr(course_views, "build_dashboard", refuse)


def test_a_worker_reads_the_build_another_kept(
    lti_env: LtiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    course_id = score_course_2(lti_env).course_id
    built = _page(lti_env, course_id, teacher)  # built here, kept for the others
    with lti_env.db() as session:
        assert (session.scalar(select(func.count()).select_from(PageBuild)) or 0) >= 1
    _forget(lti_env)
    with monkeypatch.context() as patch:
        _no_build(patch)
        shared = _page(lti_env, course_id, teacher)
    assert shared == built


def test_the_scorings_build_serves_the_first_teacher(
    lti_env: LtiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    teacher_fr = token_of(launch(lti_env.client(), lti_env, "teacher_fr"))
    course_id = score_course_2(lti_env).course_id
    with lti_env.db() as session:  # nothing kept: as right after a new scoring
        session.query(PageBuild).delete()
    _forget(lti_env)
    page_prebuilder(lti_env.settings)(course_id)  # what tasks.after_scoring runs
    with lti_env.db() as session:
        assert session.scalar(select(func.count()).select_from(PageBuild)) == 2  # en, fr
    with monkeypatch.context() as patch:
        _no_build(patch)
        english = _page(lti_env, course_id, teacher)
        french = _page(lti_env, course_id, teacher_fr)
    assert 'lang="fr"' in french
    assert 'lang="en"' in english
    # The same pages as built on the spot.
    with lti_env.db() as session:
        session.query(PageBuild).delete()
    _forget(lti_env)
    assert _page(lti_env, course_id, teacher) == english
    assert _page(lti_env, course_id, teacher_fr) == french
