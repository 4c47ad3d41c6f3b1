"""access log: a teacher's view of the dashboard (the whole course's estimates) is recorded (#18)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("student_page", "learner_page", "export", "api_student", "api_students")
_AFTER = (*_BEFORE, "dashboard")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def _set(kinds: tuple[str, ...]) -> None:
    # Batch mode is safe here: no table refers to access_log (SQLite recreates it to change a
    # CHECK constraint; PostgreSQL alters it in place).
    with op.batch_alter_table("access_log") as batch:
        batch.drop_constraint(op.f("ck_access_log_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_access_log_kind"), sa.text(_kinds(kinds)))


def upgrade() -> None:
    _set(_AFTER)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM access_log WHERE kind = 'dashboard'"))
    _set(_BEFORE)
