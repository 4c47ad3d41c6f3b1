"""The registry of log sources: one name, one factory, declared once.

Everything that needs to know which log sources exist reads this registry: the configuration
(`moodle.log_source` must name one), the CLI's `--source` choices, the site's stored source (a
CHECK constraint built from `DECLARED`) and the sync (which builds a course's source). A new
source is a module exposing `SOURCE` (a `LogSourceSpec`), usually under
`lti_app/services/log_sources/`, plus one line in `DECLARED` (in `lti_app/log_source_names.py`)
and a migration re-creating `moodle_site`'s CHECK (`tests/lti_app/test_log_sources.py` holds
the two equal); no if-chain anywhere. A source added at run time with `register` (a plugin, a
test) can be synced by name but not stored as a site's default.

Source modules are imported on first use, by name, and the declared names sit in a leaf module
of their own: the configuration and the models read the names there, while this module and the
sources may use the configuration and the models, without an import circle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lti_app.log_source_names import DECLARED as DECLARED  # re-exported: the registry API

if TYPE_CHECKING:  # typing only: `--help` lists `--source`'s choices without loading requests
    from lti_app.config import Settings
    from lti_app.models import Course
    from moodle_client.client import MoodleClient
    from moodle_client.logs import LogSource


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
    Moodle web-service client."""

    name: str
    description: str
    build: Callable[[SourceContext], LogSource] | None = None
    needs_client: bool = False
    not_pulled: str = ""


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
