"""Moodle site registration: where the tool reads from, and the (encrypted) token it reads with."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.models import MoodleSite


class SiteError(ValueError):
    """A site definition that cannot be accepted, worded for the admin."""


def normalise_base_url(url: str) -> str:
    """`https://arche.univ-lorraine.fr/` and `…/webservice/rest/server.php` name the same site."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SiteError(f"'{url}' is not an http(s) URL of a Moodle site")
    path = parts.path.rstrip("/")
    for suffix in ("/webservice/rest/server.php", "/login/index.php"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return f"{parts.scheme}://{parts.netloc}{path}"


def upsert_site(
    session: Session,
    box: SecretBox,
    base_url: str,
    *,
    name: str = "",
    token: str | None = None,
    rename: bool = True,
    notes: list[str] | None = None,
) -> MoodleSite:
    """Create or update a site. The token is encrypted before it touches the session.

    An existing site takes a new `name` only with `rename` (`site add --name`, the site's own
    command); registering a platform or a launch never renames it. Either way, a name that
    differs is said in `notes` for the command to print.
    """
    url = normalise_base_url(base_url)
    site = session.scalar(select(MoodleSite).where(MoodleSite.base_url == url))
    if site is None:
        site = MoodleSite(base_url=url, name=name or url)
        session.add(site)
    elif name and name != site.name:
        if rename:
            _note(notes, f"site {url} renamed from '{site.name}' to '{name}'")
            site.name = name
        else:
            _note(notes, f"site {url} keeps its name '{site.name}' (not renamed to '{name}')")
    if token is not None:
        token = token.strip()
        if not token:
            raise SiteError("the web-service token is empty")
        site.ws_token_encrypted = box.encrypt(token)
    session.flush()
    return site


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)


def site_token(box: SecretBox, site: MoodleSite) -> str | None:
    """The site's plain token, for the Moodle client only; never log or render it."""
    if site.ws_token_encrypted is None:
        return None
    return box.decrypt(site.ws_token_encrypted)


def note_release(site: MoodleSite, release: str) -> None:
    """Remember the Moodle release a successful connection check read (the admin page shows it)."""
    if release:
        site.release = release[:100]
