"""Moodle site registration stores the web-service token encrypted, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox, generate_key
from lti_app.models import MoodleSite
from lti_app.services.sites import SiteError, normalise_base_url, site_token, upsert_site

TOKEN = "f3a9c1d2e4b5a6978877665544332211"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://arche.univ-lorraine.fr/", "https://arche.univ-lorraine.fr"),
        ("https://m.example.org/moodle/webservice/rest/server.php", "https://m.example.org/moodle"),
        (" http://localhost:8080/login/index.php ", "http://localhost:8080"),
    ],
)
def test_normalise_base_url(raw: str, expected: str) -> None:
    assert normalise_base_url(raw) == expected


@pytest.mark.parametrize("raw", ["ftp://x", "arche.univ-lorraine.fr", ""])
def test_normalise_rejects_non_urls(raw: str) -> None:
    with pytest.raises(SiteError, match="not an http"):
        normalise_base_url(raw)


def test_token_is_stored_encrypted(db_session: Session) -> None:
    box = SecretBox(generate_key())
    site = upsert_site(db_session, box, "https://arche.example.fr/", name="ARCHE", token=TOKEN)
    raw = db_session.execute(
        text("SELECT ws_token_encrypted FROM moodle_site WHERE id = :id"), {"id": site.id}
    ).scalar_one()
    assert TOKEN not in raw
    assert site_token(box, site) == TOKEN
    # Updating the same site (same normalised URL) replaces the token, not the row.
    again = upsert_site(db_session, box, "https://arche.example.fr", token="other")
    assert again.id == site.id
    assert site_token(box, again) == "other"
    count = db_session.scalars(select(MoodleSite)).all()
    assert len(count) == 1


def test_empty_token_is_refused(db_session: Session) -> None:
    with pytest.raises(SiteError, match="empty"):
        upsert_site(db_session, SecretBox(generate_key()), "https://x.fr", token="  \n")
