"""The tool's front door outside Moodle: `/` says what this is and where to go, and
`/favicon.ico` answers what browsers ask for on their own (both public, no session).

Everything useful happens inside a launch from Moodle; someone who opens the bare address (the
README's link, a curious admin) gets a short page instead of a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, send_from_directory

from lti_app.web.common import settings as _settings

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> Any:
    settings = _settings()
    demo_platform = (
        f"http://localhost:{settings.demo.platform_port}/" if settings.demo.enabled else None
    )
    return render_template("home.html", demo_platform=demo_platform)


@bp.get("/favicon.ico")
def favicon() -> Any:
    response = send_from_directory(
        current_app.static_folder or "static", "favicon.ico", mimetype="image/vnd.microsoft.icon"
    )
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
