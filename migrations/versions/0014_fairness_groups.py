"""fairness groups: the roster attributes a site declares for the fairness audit (#18, item 7)

`moodle_site.fairness_groups` lists the attributes an administrator declared lawful and
relevant (none by default); `person_attribute` keeps only those, per person; the live
validation keeps the audit of its weeks in `live_validation.fairness`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, never batch mode, on tables other tables refer to (see 0013).
    op.add_column(
        "moodle_site",
        sa.Column("fairness_groups", sa.JSON(), server_default="[]", nullable=False),
    )
    op.add_column("live_validation", sa.Column("fairness", sa.JSON(), nullable=True))
    op.create_table(
        "person_attribute",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"],
            name=op.f("fk_person_attribute_person_id_person"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "name", name=op.f("pk_person_attribute")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("person_attribute")
    # Native DROP COLUMN (SQLite 3.35 and later), not batch mode: see upgrade().
    op.drop_column("live_validation", "fairness")
    op.drop_column("moodle_site", "fairness_groups")
