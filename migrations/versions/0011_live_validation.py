"""live validation: how right the shown estimates turned out, per finished course (#17)

Once a course's term has ended and its final grades are in, the scoring after a sync scores the
estimates that were shown at each week of the term against the outcomes and keeps the result
here (one row per course), for the model card and the admin page's drift list.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_validation",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("pass_mark", sa.Float(), nullable=False),
        sa.Column("n_students", sa.Integer(), nullable=False),
        sa.Column("drift", sa.Boolean(), nullable=False),
        sa.Column("weeks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_live_validation_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", name=op.f("pk_live_validation")),
    )


def downgrade() -> None:
    op.drop_table("live_validation")
