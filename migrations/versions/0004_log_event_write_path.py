"""log_event write path: no per-row site lookup, partial unique indexes

The ingest profile (issue #7) showed PostgreSQL spending a third of a COPY into log_event on the
foreign key to moodle_site (a locking lookup per row), and more on index entries nobody reads:
the (site, content_hash) unique index held a NULL entry for every web-service row, the
(site, moodle_log_id) one a NULL entry for every CSV row. See `lti_app.models.LogEvent`.

The foreign key's ON DELETE CASCADE is kept as a trigger on moodle_site (a site row is deleted
rarely, and then its events go with it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The cascade that the foreign key did, as plain statements (no outside input).
_PG_CREATE = (
    "CREATE FUNCTION arche_delete_site_log_events() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN DELETE FROM log_event WHERE site_id = OLD.id; RETURN OLD; END $$",
    "CREATE TRIGGER trg_moodle_site_delete_log_events AFTER DELETE ON moodle_site "
    "FOR EACH ROW EXECUTE FUNCTION arche_delete_site_log_events()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS trg_moodle_site_delete_log_events ON moodle_site",
    "DROP FUNCTION IF EXISTS arche_delete_site_log_events()",
)
_SQLITE_CREATE = (
    "CREATE TRIGGER trg_moodle_site_delete_log_events AFTER DELETE ON moodle_site "
    "FOR EACH ROW BEGIN DELETE FROM log_event WHERE site_id = OLD.id; END",
)
_SQLITE_DROP = ("DROP TRIGGER IF EXISTS trg_moodle_site_delete_log_events",)


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _partial_unique(name: str, column: str) -> None:
    where = sa.text(f"{column} IS NOT NULL")
    op.create_index(
        name,
        "log_event",
        ["site_id", column],
        unique=True,
        postgresql_where=where,
        sqlite_where=where,
    )


def upgrade() -> None:
    with op.batch_alter_table("log_event", schema=None) as batch_op:
        batch_op.drop_constraint("fk_log_event_site_id_moodle_site", type_="foreignkey")
        batch_op.drop_constraint("uq_log_event_site_id_content_hash", type_="unique")
        batch_op.drop_constraint("uq_log_event_site_id_moodle_log_id", type_="unique")
    _partial_unique("uq_log_event_site_id_moodle_log_id", "moodle_log_id")
    _partial_unique("uq_log_event_site_id_content_hash", "content_hash")
    for statement in _PG_CREATE if _postgresql() else _SQLITE_CREATE:
        op.execute(statement)


def downgrade() -> None:
    for statement in _PG_DROP if _postgresql() else _SQLITE_DROP:
        op.execute(statement)
    op.drop_index("uq_log_event_site_id_content_hash", table_name="log_event")
    op.drop_index("uq_log_event_site_id_moodle_log_id", table_name="log_event")
    with op.batch_alter_table("log_event", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_log_event_site_id_moodle_log_id", ["site_id", "moodle_log_id"]
        )
        batch_op.create_unique_constraint(
            "uq_log_event_site_id_content_hash", ["site_id", "content_hash"]
        )
        batch_op.create_foreign_key(
            "fk_log_event_site_id_moodle_site",
            "moodle_site",
            ["site_id"],
            ["id"],
            ondelete="CASCADE",
        )
