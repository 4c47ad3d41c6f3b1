"""Dates on the pages are in the site's time zone (`moodle.timezone`, Europe/Paris by default)
with their offset, never bare UTC: a sync that finished at 17:24:14 UTC reads 18:24:14 (UTC+1)
in December and 19:24:14 (UTC+2) in July (a later year's, so that it is the last sync), in
English and in French."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from lti_app.models import Course, SyncRun
from tests.lti_app.lti.env import LtiEnv, launch, token_of

WINTER = datetime(2026, 12, 3, 17, 24, 14, tzinfo=UTC)
SUMMER = datetime(2027, 7, 3, 17, 24, 14, tzinfo=UTC)
EXPECTED = {
    ("en", WINTER): "Last sync: Dec 3, 2026, 6:24:14 PM (UTC+1), succeeded.",
    ("fr", WINTER): "Dernière synchronisation : 3 déc. 2026, 18:24:14 (UTC+1), réussie.",
    ("en", SUMMER): "Last sync: Jul 3, 2027, 7:24:14 PM (UTC+2), succeeded.",
    ("fr", SUMMER): "Dernière synchronisation : 3 juil. 2027, 19:24:14 (UTC+2), réussie.",
}


@pytest.mark.parametrize("moment", [WINTER, SUMMER], ids=["winter", "summer"])
def test_a_utc_moment_reads_as_paris_time_with_its_offset(
    lti_env: LtiEnv, moment: datetime
) -> None:
    assert lti_env.settings.moodle.timezone == "Europe/Paris"
    tokens = {
        "en": token_of(launch(lti_env.client(), lti_env, "teacher")),
        "fr": token_of(launch(lti_env.client(), lti_env, "teacher_fr")),
    }
    with lti_env.db() as db:
        course = db.scalars(select(Course)).one()
        course_id = course.id
        db.add(
            SyncRun(
                site_id=course.site_id,
                course_id=course.id,
                status="succeeded",
                started_at=moment.replace(minute=20),
                finished_at=moment,
            )
        )
    for lang, token in tokens.items():
        page = lti_env.client().get(f"/course/{course_id}", headers={"X-Launch-Token": token})
        assert page.status_code == 200
        text = " ".join(page.get_data(as_text=True).split())
        found = re.search(r"(Last sync|Dernière synchronisation)[^<]*", text)
        assert found is not None
        assert EXPECTED[lang, moment] in found.group(0), lang
        assert "17:24:14" not in text
        assert "5:24:14" not in text
