"""How the tool reaches a Moodle site: the web-service client built from the site's settings.

Shared by the sync (CLI, scheduler, "Sync now"), `moodle check` and the admin page's connection
check, so that a site's token is decrypted and its client configured in one place.
"""

from __future__ import annotations

from lti_app.config import Settings
from lti_app.crypto import SecretBox
from lti_app.models import MoodleSite
from lti_app.services.errors import SyncConfigError
from lti_app.services.sites import site_token
from moodle_client.client import MoodleClient

__all__ = ["SyncConfigError", "moodle_client_for"]


def moodle_client_for(settings: Settings, box: SecretBox, site: MoodleSite) -> MoodleClient:
    token = site_token(box, site)
    if not token:
        if site.log_source == "csv":
            raise SyncConfigError(
                f"site {site.base_url} has no web-service token (a CSV-only site): import its "
                "downloads with `arche-predict import-logs` and `import-grades`, or store a "
                f"token with `arche-predict site add --url {site.base_url}` to sync it"
            )
        raise SyncConfigError(
            f"site {site.base_url} has no web-service token; run `arche-predict site add`"
        )
    return MoodleClient(
        site.base_url,
        token,
        timeout=settings.moodle.request_timeout,
        max_retries=settings.moodle.max_retries,
    )
