"""course: Moodle's pass mark, who set the tool's, and the at-risk threshold

Moodle's stock web services never return the course total's `gradepass`; the companion
plugin's `local_archepredict_get_course_grading` does, with the item's own maximum, because
Moodle compares the pass mark with the raw total (issue #13, item 2). They are kept raw here
and put on the tool's scale where they are read. A teacher's setting (`pass_mark`, already a
column) wins over Moodle's; who set it and when is shown beside it. `risk_threshold` is the
pass chance under which a student is "at risk" for this course (issue #14, item 4); NULL means
the site default.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moodle_gradepass", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("moodle_grademax", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("pass_mark_set_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("pass_mark_set_at", UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("risk_threshold", sa.Float(), nullable=True))
        batch_op.create_foreign_key(
            "fk_course_pass_mark_set_by_person",
            "person",
            ["pass_mark_set_by"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_constraint("fk_course_pass_mark_set_by_person", type_="foreignkey")
        batch_op.drop_column("risk_threshold")
        batch_op.drop_column("pass_mark_set_at")
        batch_op.drop_column("pass_mark_set_by")
        batch_op.drop_column("moodle_grademax")
        batch_op.drop_column("moodle_gradepass")
