"""What every dashboard page words the same way: translated text and feature names.

A feature's name for people is declared with the feature (`ml.feature_info`, in English, marked
for Babel's extraction there); it is translated here, at the reader's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import gettext
from flask_babel import ngettext as _ngettext

from ml.feature_info import CATEGORY_LABELS, FEATURES


def _(text: str, **values: Any) -> str:
    """Translated text, typed (Flask-Babel's `gettext` is not)."""
    return str(gettext(text, **values))


def ngettext(singular: str, plural: str, num: int, **values: Any) -> str:
    """Translated text in the plural form `num` asks for (`%(num)s` in the text), typed."""
    return str(_ngettext(singular, plural, num, **values))


def label(feature: str) -> str:
    """A feature's human name; cohort z-scores read as 'X compared with the cohort'. A column
    no feature describes (a model trained on other event types) reads as its name."""
    if feature.startswith("z_"):
        return _("%(name)s, compared with the cohort", name=label(feature[2:]))
    info = FEATURES.get(feature)
    return _(info.label) if info is not None else feature.replace("_", " ")


def category_label(category: str) -> str:
    """An activity category's name for people ("forum_read" reads "Forum reading")."""
    words = CATEGORY_LABELS.get(category)
    return _(words) if words is not None else category.replace("_", " ")


def labels(features: Sequence[str]) -> dict[str, str]:
    return {f: label(f) for f in features}
