"""page builds shared by every web worker (#19, item 5)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "page_build",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("built_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["course.id"],
            name=op.f("fk_page_build_course_id_course"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_page_build")),
    )  # fmt: skip
    op.create_index(op.f("ix_page_build_course_id"), "page_build", ["course_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_page_build_course_id"), table_name="page_build")
    op.drop_table("page_build")
