"""coursework: course modules with their due dates, submissions and completion (issue #16)

The student page shows, beside the risk, the work a student owes and what they opened: each
course module the sync reads (`core_course_get_contents`) with an assignment's due date and
cut-off or a quiz's closing time (`coursework_item`); per student the latest assignment
submission and the activity completion (`coursework_status`), stored as Moodle gives them, so
that "late", "missing" or "not yet due" is read against the dates when the page is shown and a
deadline passing needs no sync; and when each feature was last read (`coursework_sync`), so a
page tells "nothing there" (read, empty) from "never read". A feature the site's token cannot
read goes to `moodle_site.unavailable_features` (0008), never into these tables as emptiness.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coursework_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("cmid", sa.Integer(), nullable=False),
        sa.Column("modname", sa.String(length=50), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("section", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("opens_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("cutoff_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("synced_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_coursework_item_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coursework_item")),
        sa.UniqueConstraint("course_id", "cmid", name=op.f("uq_coursework_item_course_id_cmid")),
    )
    op.create_table(
        "coursework_sync",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.JSON(), nullable=False),
        sa.Column("synced_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_coursework_sync_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", name=op.f("pk_coursework_sync")),
    )
    op.create_table(
        "coursework_status",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("submission", sa.String(length=16), nullable=True),
        sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("completion", sa.SmallInteger(), nullable=True),
        sa.Column("completed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["coursework_item.id"],
            name=op.f("fk_coursework_status_item_id_coursework_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_coursework_status_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", "person_id", name=op.f("pk_coursework_status")),
    )
    with op.batch_alter_table("coursework_status", schema=None) as batch_op:
        batch_op.create_index("ix_coursework_status_person_id", ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("coursework_status", schema=None) as batch_op:
        batch_op.drop_index("ix_coursework_status_person_id")

    op.drop_table("coursework_status")
    op.drop_table("coursework_sync")
    op.drop_table("coursework_item")
