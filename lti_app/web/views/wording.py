"""What every dashboard page words the same way: translated text and feature names.

A feature's name for people is declared with the feature (`ml.feature_info`, in English, marked
for Babel's extraction there); it is translated here, at the reader's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import gettext

from ml.feature_info import FEATURES


def _(text: str, **values: Any) -> str:
    """Translated text, typed (Flask-Babel's `gettext` is not)."""
    return str(gettext(text, **values))


def label(feature: str) -> str:
    """A feature's human name; cohort z-scores read as 'X compared with the cohort'. A column
    no feature describes (a model trained on other event types) reads as its name."""
    if feature.startswith("z_"):
        return _("%(name)s, compared with the cohort", name=label(feature[2:]))
    info = FEATURES.get(feature)
    return _(info.label) if info is not None else feature.replace("_", " ")


def labels(features: Sequence[str]) -> dict[str, str]:
    return {f: label(f) for f in features}
