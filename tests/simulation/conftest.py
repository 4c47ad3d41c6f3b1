"""The simulator tests read the same session-scoped course as the ml tests (one definition)."""

from __future__ import annotations

from tests.ml.conftest import course as course
