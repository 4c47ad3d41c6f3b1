"""LTI 1.3: server-side launch sessions and the DB-backed launch-data storage (nonces, states).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:08:26.920329
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_stored_value",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("expires_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_lti_stored_value")),
    )
    with op.batch_alter_table("lti_stored_value", schema=None) as batch_op:
        batch_op.create_index("ix_lti_stored_value_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "lti_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("launch_id", sa.String(length=100), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('learner', 'teacher', 'admin')", name=op.f("ck_lti_session_role")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_lti_session_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_lti_session_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platform.id"],
            name=op.f("fk_lti_session_platform_id_lti_platform"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_session")),
        sa.UniqueConstraint("sid_hash", name=op.f("uq_lti_session_sid_hash")),
    )
    with op.batch_alter_table("lti_session", schema=None) as batch_op:
        batch_op.create_index("ix_lti_session_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lti_session", schema=None) as batch_op:
        batch_op.drop_index("ix_lti_session_expires_at")

    op.drop_table("lti_session")
    with op.batch_alter_table("lti_stored_value", schema=None) as batch_op:
        batch_op.drop_index("ix_lti_stored_value_expires_at")

    op.drop_table("lti_stored_value")
