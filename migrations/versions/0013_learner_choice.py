"""learner choice: opting out of (or into) the estimates, per course (#18)

A site's `consent_mode` says whose data the tool uses ("teacher": everyone's, and each course's
teacher decides with `course.opt_out_allowed` whether its learners may opt out; "opt_in": only
those who said yes). `learner_choice` keeps each learner's "out" or "in" per course.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch), so that SQLite keeps moodle_site's trigger (0004); and the
    # trigger put back where 0010, as first written, lost it.
    op.add_column(
        "moodle_site",
        sa.Column("consent_mode", sa.String(length=16), server_default="teacher", nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER IF NOT EXISTS trg_moodle_site_delete_log_events AFTER DELETE ON "
            "moodle_site FOR EACH ROW BEGIN DELETE FROM log_event WHERE site_id = OLD.id; END"
        )
    # Plain ALTER TABLE, never batch mode, on tables other tables refer to: SQLite's batch
    # mode recreates the table, and with foreign keys on, dropping the old one deletes (or
    # unlinks) every row that refers to it (tests/test_migrations.py keeps data across).
    op.add_column(
        "course",
        sa.Column("opt_out_allowed", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.create_table(
        "learner_choice",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("choice IN ('in', 'out')", name=op.f("ck_learner_choice_choice")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["course.id"],
            name=op.f("fk_learner_choice_course_id_course"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"],
            name=op.f("fk_learner_choice_person_id_person"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "person_id", name=op.f("pk_learner_choice")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("learner_choice")
    # Native DROP COLUMN (SQLite 3.35 and later), not batch mode: see upgrade().
    op.drop_column("course", "opt_out_allowed")
    op.drop_column("moodle_site", "consent_mode")
