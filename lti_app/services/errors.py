"""Errors several services raise, in a leaf module any of them may import without a circle."""

from __future__ import annotations


class SyncConfigError(Exception):
    """The course or site cannot be synced as configured (no token, unknown source…); the
    message says what to do."""
