"""The at-risk table as a spreadsheet (`/course/<id>/students.csv`): every row and column the
server holds, not only what the page's table shows."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from lti_app.services.exports import SafeCsvWriter
from ml.feature_info import CSV_ENGAGEMENT

#: The columns before the engagement features (`ml.feature_info.CSV_ENGAGEMENT`); the top
#: factors of the pass chance come last.
_PREDICTION_COLUMNS = (
    "person_id",
    "moodle_user_id",
    "fullname",
    "predicted_grade",
    "grade_low",
    "grade_high",
    "pass_probability",
    "probability_low",
    "probability_high",
    "predicted_pass",
    "at_risk",
)


def students_csv(students: Sequence[Mapping[str, Any]]) -> str:
    """The at-risk table as CSV (UTF-8 with BOM, so that Excel opens accents right). Names and
    other text are neutralised against formula injection (`services.exports`); numbers stay
    numbers, to four significant digits."""
    buf = io.StringIO()
    writer = SafeCsvWriter(buf, float_format=".4g")
    writer.writerow([*_PREDICTION_COLUMNS, *CSV_ENGAGEMENT, "top_factors"])
    for s in students:
        gi = s.get("grade_interval") or [None, None]
        pi = s.get("probability_interval") or [None, None]
        eng = s.get("engagement") or {}
        factors = "; ".join(f["feature"] for f in (s.get("factors") or {}).get("pass", [])[:3])
        writer.writerow(
            [
                s["person_id"],
                s.get("moodle_user_id"),
                s["fullname"],
                s.get("predicted_grade"),
                gi[0],
                gi[1],
                s.get("pass_probability"),
                pi[0],
                pi[1],
                s.get("predicted_pass"),
                s.get("at_risk"),
                *(eng.get(feature) for feature in CSV_ENGAGEMENT),
                factors,
            ]
        )
    return "\ufeff" + buf.getvalue()
