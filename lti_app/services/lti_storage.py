"""pylti1p3's launch-data storage and session service, backed by the database.

pylti1p3 keeps states, nonces and launch data in the Flask session by default, i.e. in one
browser's cookie, which Moodle's iframe may not keep, or in a per-process cache, which another
gunicorn worker cannot see. Here every value is a row of `lti_stored_value`, visible to all
workers, with an expiry. Nonces and login states are consumed by deleting their row: of two
requests racing with the same value, exactly one deletes it, so a replay always fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.db import deleted_rows, utcnow
from lti_app.models import LtiStoredValue

KEY_MAX = 255


class DbLaunchDataStorage(LaunchDataStorage[Any]):
    """Key-value rows with an expiry. No session-id prefix: the state binds a launch instead."""

    _session_cookie_name = ""

    def __init__(self, session: Session, *, now: datetime | None = None) -> None:
        super().__init__()
        self._db = session
        self._now = now

    def now(self) -> datetime:
        return self._now or utcnow()

    def get_session_cookie_name(self) -> str | None:
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        key = self._prepare_key(key)[:KEY_MAX]
        if "\x00" in key:  # PostgreSQL text cannot hold NUL; no key of ours has one
            return None
        row = self._db.scalar(
            select(LtiStoredValue).where(
                LtiStoredValue.key == key, LtiStoredValue.expires_at > self.now()
            )
        )
        return None if row is None else row.value

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        key = self._prepare_key(key)[:KEY_MAX]
        expires_at = self.now() + timedelta(seconds=exp if exp is not None else 86400)
        row = self._db.get(LtiStoredValue, key)
        if row is None:
            self._db.add(LtiStoredValue(key=key, value=value, expires_at=expires_at))
        else:
            row.value = value
            row.expires_at = expires_at
        self._db.flush()

    def check_value(self, key: str) -> bool:
        return self.get_value(key) is not None

    def consume(self, key: str) -> Any:
        """Return the value and delete it, or None when absent, expired or already consumed.

        The DELETE decides: under concurrency only one request sees its rowcount be 1.
        """
        key = self._prepare_key(key)[:KEY_MAX]
        value = self.get_value(key)
        if value is None:
            return None
        result = self._db.execute(
            delete(LtiStoredValue)
            .where(LtiStoredValue.key == key, LtiStoredValue.expires_at > self.now())
            .execution_options(synchronize_session=False)
        )
        self._db.flush()
        return value if getattr(result, "rowcount", 0) == 1 else None


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    result = session.execute(
        delete(LtiStoredValue)
        .where(LtiStoredValue.expires_at <= (now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return deleted_rows(result)


class DbSessionService(SessionService):
    """pylti1p3's session service on the DB storage, with a single-use nonce.

    pylti1p3's `check_nonce` only checks that the nonce was issued; here it is consumed.
    """

    data_storage: DbLaunchDataStorage

    def __init__(self, request: Request, storage: DbLaunchDataStorage) -> None:
        super().__init__(request)
        self.set_data_storage(storage)
        storage.set_request(request)

    def check_nonce(self, nonce: str) -> bool:
        return self.data_storage.consume(self._get_key("nonce", nonce)) is not None

    def consume_state_params(self, state: str) -> dict[str, Any] | None:
        value = self.data_storage.consume(self._get_key(state))
        return value if isinstance(value, dict) else None
