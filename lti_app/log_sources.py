"""The registry of log sources: one name, one factory, declared once.

Everything that needs to know which log sources exist reads this registry: the configuration
(`moodle.log_source` must name one), the CLI's `--source` choices, the site's stored source
(a CHECK constraint built from `DECLARED`), the sync (which builds the source of a course) and
`moodle check` (whether the companion plugin's function is needed). A new source is a module
exposing `SOURCE` (a `LogSourceSpec`), usually under `lti_app/services/log_sources/`, plus one
line in `DECLARED` below (and a migration re-creating `moodle_site`'s CHECK, which
`tests/test_migrations.py` holds equal to `DECLARED`); no if-chain anywhere. A source added at
run time with `register` (a plugin, a test) can be synced by name but not stored as a site's
default.

Source modules are imported on first use, by name: this module stays a leaf (the standard
library and `moodle_client`'s LogSource protocol only), so that the configuration and the models
can read it without an import circle (a source module may need both, and a client).

The database keeps the name as plain text with no CHECK constraint on purpose: a constraint
spelling the names would need a migration for every new source, and the application never
writes a name the registry does not know.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moodle_client.logs import LogSource

if TYPE_CHECKING:
    from lti_app.config import Settings
    from lti_app.models import Course
    from moodle_client.client import MoodleClient


class LogSourceError(Exception):
    """A log source that cannot be built as configured; the message says what to do."""


@dataclass(frozen=True)
class SourceContext:
    """What a factory may use to build one course's source."""

    settings: Settings
    course: Course
    client: MoodleClient | None


@dataclass(frozen=True)
class LogSourceSpec:
    """A log source as the rest of the tool sees it.

    `build` is None for a source that is imported rather than pulled (the CSV download);
    `not_pulled` then says how to import it. `needs_client` says whether building it needs a
    Moodle web-service client, and `needs_log_function` whether the site must have the
    companion plugin's log function (what `moodle check` then verifies)."""

    name: str
    description: str
    build: Callable[[SourceContext], LogSource] | None = None
    needs_client: bool = False
    needs_log_function: bool = False
    not_pulled: str = ""


# The sources this tool ships: name -> the module whose SOURCE describes it. One line each.
DECLARED: dict[str, str] = {
    "ws": "lti_app.services.log_sources.ws",
    "db": "lti_app.services.log_sources.db",
    "csv": "lti_app.services.log_sources.csv",
}

_LOADED: dict[str, LogSourceSpec] = {}
_EXTRA: dict[str, LogSourceSpec] = {}


def register(source: LogSourceSpec) -> LogSourceSpec:
    """Add a source at run time (a plugin, or a test's toy source); a taken name is refused."""
    if source.name in DECLARED or source.name in _EXTRA:
        raise ValueError(f"log source '{source.name}' is registered twice")
    if not source.name.isascii() or not source.name.isidentifier() or len(source.name) > 8:
        raise ValueError(f"log source name '{source.name}': 1-8 ASCII letters, digits or _")
    _EXTRA[source.name] = source
    return source


def unregister(name: str) -> None:
    """Remove a source added by `register` (tests clean up with this)."""
    _EXTRA.pop(name, None)


def names() -> tuple[str, ...]:
    return (*DECLARED, *_EXTRA)


def spec(name: str) -> LogSourceSpec:
    if name in _EXTRA:
        return _EXTRA[name]
    if name not in DECLARED:
        raise LogSourceError(f"unknown log source '{name}' (known: {', '.join(names())})")
    if name not in _LOADED:
        loaded = importlib.import_module(DECLARED[name]).SOURCE
        if not isinstance(loaded, LogSourceSpec) or loaded.name != name:
            raise TypeError(f"{DECLARED[name]}.SOURCE is not the '{name}' LogSourceSpec")
        _LOADED[name] = loaded
    return _LOADED[name]


def build(name: str, context: SourceContext) -> LogSource:
    """The course's source, or `LogSourceError` saying why it cannot be pulled."""
    found = spec(name)
    if found.build is None:
        raise LogSourceError(found.not_pulled or f"'{name}' logs cannot be pulled")
    if found.needs_client and context.client is None:
        raise LogSourceError(f"the {name} log source needs a Moodle web-service client")
    return found.build(context)
