"""teacher links: past offerings linked from the dashboard, approval, backfill requests (#17)

A teacher links the past offerings of their course from the dashboard instead of asking an
administrator for `arche-predict course add --past`. Each link records who asked for it and, on a
site that requires an administrator's approval (`moodle_site.link_approval_required`), its state
(`course_lineage.status`: active, pending, rejected) and who decided. Links made before this
revision were made by administrators: they stay active. The backfill that pulls the linked
offerings' data is a "Sync now" request of kind `backfill`, whose progress spans several courses
(`sync_request.steps_total`, `steps_done`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch): SQLite's batch mode would recreate moodle_site and lose
    # its trigger that deletes a site's log events (0004).
    op.add_column(
        "moodle_site",
        sa.Column(
            "link_approval_required", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    with op.batch_alter_table("course_lineage", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="active", nullable=False)
        )
        batch_op.add_column(sa.Column("requested_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_course_lineage_requested_by_person",
            "person",
            ["requested_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            "fk_course_lineage_decided_by_person",
            "person",
            ["decided_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_check_constraint("status", "status IN ('active', 'pending', 'rejected')")
    with op.batch_alter_table("sync_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="sync", nullable=False)
        )
        batch_op.add_column(
            sa.Column("steps_total", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("steps_done", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_request", schema=None) as batch_op:
        batch_op.drop_column("steps_done")
        batch_op.drop_column("steps_total")
        batch_op.drop_column("kind")
    with op.batch_alter_table("course_lineage", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_course_lineage_status"), type_="check")
        batch_op.drop_constraint("fk_course_lineage_decided_by_person", type_="foreignkey")
        batch_op.drop_constraint("fk_course_lineage_requested_by_person", type_="foreignkey")
        batch_op.drop_column("decided_at")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("requested_by")
        batch_op.drop_column("status")
    # Native DROP COLUMN (SQLite 3.35 and later), not batch mode: batch mode recreates
    # moodle_site, and with foreign keys on that deletes every course and person of the site.
    op.drop_column("moodle_site", "link_approval_required")
