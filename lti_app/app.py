"""The Flask application factory.

`create_app(settings)` wires configuration, the database, logging, metrics and the blueprints.
It reads nothing from the environment itself: the caller (CLI, gunicorn entry point, tests)
loads `Settings` first, so one object drives everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import gettext
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from lti_app.config import Settings, prometheus_multiprocess_dir
from lti_app.crypto import SecretBox
from lti_app.db import make_engine, make_session_factory, private_instance
from lti_app.observability import HttpMetrics, configure_logging, get_logger
from lti_app.web.auth import N_, wants_json

log = get_logger(__name__)


def create_app(settings: Settings) -> Flask:
    settings.require_secrets()
    configure_logging(settings.app.log_level, settings.app.log_format)

    # Learners' data lives there (SQLite, models, metric files): only the tool's user may enter.
    private_instance(settings.instance_dir.resolve(), settings.model_root)
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.config.update(
        SECRET_KEY=settings.app.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.app.secure,
        JSON_SORT_KEYS=False,
    )
    if settings.app.proxy_count:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.app.proxy_count,
            x_proto=settings.app.proxy_count,
            x_host=settings.app.proxy_count,
        )

    engine = make_engine(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    app.extensions["arche_predict"] = {
        "settings": settings,
        "engine": engine,
        "session_factory": make_session_factory(engine),
        "secret_box": SecretBox.from_settings(settings),
        "metrics": HttpMetrics(multiprocess_dir=prometheus_multiprocess_dir()),
    }

    _install_request_hooks(app)
    _install_error_handlers(app)

    from lti_app.web import auth, converters, db, hardening, i18n
    from lti_app.web.actions import bp as actions_bp
    from lti_app.web.admin_courses import bp as admin_courses_bp
    from lti_app.web.api import bp as api_bp
    from lti_app.web.course_settings import bp as course_settings_bp
    from lti_app.web.health import bp as health_bp
    from lti_app.web.home import bp as home_bp
    from lti_app.web.lti import bp as lti_bp
    from lti_app.web.my_data import bp as my_data_bp
    from lti_app.web.offerings import bp as offerings_bp
    from lti_app.web.pages import bp as pages_bp
    from lti_app.web.privacy import bp as privacy_bp

    db.install(app)
    hardening.install(app)  # before auth: size and cross-site checks come first
    converters.install(app)  # before the blueprints: their rules use `<id:...>`
    app.register_blueprint(health_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(lti_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(course_settings_bp)
    app.register_blueprint(admin_courses_bp)
    app.register_blueprint(actions_bp)
    app.register_blueprint(offerings_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(my_data_bp)
    auth.install(app)
    i18n.install(app)
    log.info("app created", database=engine.url.render_as_string(hide_password=True))
    return app


def settings_of(app: Flask) -> Settings:
    settings: Settings = app.extensions["arche_predict"]["settings"]
    return settings


def _install_request_hooks(app: Flask) -> None:
    metrics: HttpMetrics = app.extensions["arche_predict"]["metrics"]

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.get("request_started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
            metrics.observe(endpoint, request.method, response.status_code, started)
        return response


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        # The exception's own headers say things the client needs (a 405's `Allow`, a 401's
        # `WWW-Authenticate`, a 503's `Retry-After`); only its body headers are ours to set.
        headers = [
            (name, value)
            for name, value in exc.get_headers()
            if name.lower() not in {"content-type", "content-length"}
        ]
        if wants_json():
            return jsonify(error=exc.name, message=exc.description, status=code), code, headers
        title, message = HTTP_PAGES.get(code, (exc.name, exc.description or ""))
        return _error_page(code, title, message), code, headers

    @app.errorhandler(OperationalError)
    def _database_error(exc: OperationalError) -> Any:
        # SQLite, the embedded default, has a single writer: a request whose snapshot went stale
        # while another wrote (two first launches at once, a launch during the nightly sync)
        # cannot write and must start again. That is "busy", not a bug: say so, and when.
        if "database is locked" not in str(exc.orig):
            return _unexpected(exc)
        log.warning("database busy", path=request.path)
        message = N_("The database is busy with another request. Please try again in a moment.")
        headers = {"Retry-After": "2"}
        if wants_json():
            body = jsonify(error="Service Unavailable", message=message, status=503)
            return body, 503, headers
        return _error_page(503, N_("Service unavailable"), message), 503, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        # The detail goes to the log (redacted), never to the browser.
        log.exception("unhandled error", path=request.path)
        message = N_(
            "An unexpected error occurred. The administrator can find the details in the logs."
        )
        if wants_json():
            return jsonify(error="Internal Server Error", message=message, status=500), 500
        return _error_page(500, N_("Internal server error"), message), 500


#: The error pages people meet, worded for them (translated where shown); another status
#: shows Werkzeug's English name and description.
HTTP_PAGES = {
    400: (N_("Bad request"), N_("The request could not be understood.")),
    404: (
        N_("Not found"),
        N_("This page does not exist. Open the tool from your Moodle course."),
    ),
    405: (N_("Method not allowed"), N_("This address does not accept this kind of request.")),
}


def _error_page(status: int, title: str, message: str) -> str:
    """The error page in the reader's language; a bare page if even that cannot be rendered
    (the error may come from the templates or the database the page would read)."""
    try:
        return str(
            render_template(
                "error.html", status=status, title=gettext(title), message=gettext(message)
            )
        )
    except Exception:  # noqa: BLE001 - the error page must not fail
        text, body = escape(title), escape(message)
        return f"<!doctype html><title>{status} {text}</title><h1>{text}</h1><p>{body}</p>"


def page_prebuilder(settings: Settings) -> Callable[[int], None]:
    """A hook for `tasks.after_scoring`: builds a course's teacher dashboard, in every
    language, into the builds shared by the web workers (`services.shared_pages`), so the first
    teacher after a scoring gets a page already built (#19, item 5). The app is created on the
    first call, once per process; the request context is the public address's, so the page's
    cache key is the one the web workers compute."""
    from lti_app.models import Course
    from lti_app.services.page_cache import PageCache
    from lti_app.web.db import db_session
    from lti_app.web.i18n import LANGUAGES
    from lti_app.web.views.course import cached_course_view

    made: list[Flask] = []

    def build(course_id: int) -> None:
        if not made:
            made.append(create_app(settings))
        app = made[0]
        base = settings.app.public_url or "http://localhost/"
        for language in LANGUAGES:
            with app.test_request_context(base_url=base, headers={"Accept-Language": language}):
                session = db_session()
                course = session.get(Course, course_id)
                if course is not None:
                    # A throwaway cache: the build goes to the shared store, not to this process.
                    cached_course_view(session, course, ml=settings.ml, cache=PageCache(size=1))

    return build
