"""grade.grade_max: each user's course-total maximum

Under Moodle's default aggregation (natural, "exclude empty grades") the course total's
`grademax` differs from user to user: 120 for a student with the assignment and the quiz
graded, 100 for one with the assignment only. One maximum per grade item made the scale of a
whole offering depend on the order of users in the report (issue #13). Each grade now keeps
the maximum it was given with; NULL for rows stored before this revision, which fall back to
their item's `grademax`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("grade", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grade_max", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grade", schema=None) as batch_op:
        batch_op.drop_column("grade_max")
