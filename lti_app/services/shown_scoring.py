"""Which stored scoring every surface shows: the one made by the course's active models.

Its own module (no ML, no Flask) because both the pages' data (`insights`) and the page cache's
key (`page_cache`) must select the same rows: a key taken over every model's predictions could
stay put while the shown scoring changed, and serve a stale page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select

from lti_app.models import ModelVersion, Prediction


def of_active_models(course_id: int | ColumnElement[int]) -> tuple[ColumnElement[bool], ...]:
    """The predictions made by the course's active models (every one, for a task that has no
    active model: then no value is shown, only the engagement the features carry).

    Every surface reads this one scoring: the newest "as of" alone could belong to a model
    that is no longer active (a scoring as of a later date, then a retraining as of an earlier
    one), and the table would then disagree with the model card and the what-if.
    """
    active = (
        select(ModelVersion.id)
        .where(ModelVersion.course_id == course_id, ModelVersion.active)
        .correlate(None)
    )

    def made_by(column: Any, task: str) -> ColumnElement[bool]:
        of_task = active.where(ModelVersion.task == task)
        return or_(column.in_(of_task.scalar_subquery()), ~of_task.exists())

    return (
        Prediction.course_id == course_id,
        made_by(Prediction.regression_model_id, "regression"),
        made_by(Prediction.classification_model_id, "classification"),
    )
