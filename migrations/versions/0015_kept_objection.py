"""kept objections: a learner's opt-out that outlives their erasure (#18)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kept_objection",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("moodle_user_id", sa.Integer(), nullable=False),
        sa.Column("since", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["course.id"],
            name=op.f("fk_kept_objection_course_id_course"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "moodle_user_id", name=op.f("pk_kept_objection")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("kept_objection")
