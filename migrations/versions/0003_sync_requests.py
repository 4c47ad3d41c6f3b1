"""sync requests: "Sync now" asked from the dashboard, run by the scheduler

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("picked_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("picked_by", sa.String(length=255), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("finished_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_sync_request_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["person.id"],
            name=op.f("fk_sync_request_requested_by_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_run.id"],
            name=op.f("fk_sync_request_run_id_sync_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_request")),
    )
    with op.batch_alter_table("sync_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_request_pending", ["picked_at", "requested_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_request", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_request_pending")

    op.drop_table("sync_request")
