"""The request's database session: opened on first use, committed or rolled back at teardown.

It lives beside the blueprints that use it (as flaskr's `db.py` does), not in the app factory:
blueprints importing it from `lti_app.app`, which imports the blueprints, made an import circle.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session


def db_session() -> Session:
    """The request's session (services take it and never commit; the teardown does)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["arche_predict"]["session_factory"]()
    session: Session = g.db_session
    return session


def install(app: Flask) -> None:
    @app.teardown_request
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is None:
            return
        try:
            if exc is None:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()
