"""teacher actions: contacts, follow-ups, visits, digests, Moodle groups (issue #16)

What a teacher does about the at-risk list is kept: each contact per recipient (Moodle's answer
and the chance shown at the time, which the effect of contacts is measured from), follow-up
notes and statuses as a history (a "flag was wrong" counts against the prediction it was set
on), the last two dashboard visits (who became at risk since), the weekly digest's opt-in, and
the course's Moodle groups for filtering. `moodle_site.unavailable_features` says which of these
actions the site's token cannot do, so the page explains instead of failing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lti_app.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "course_visit",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("before_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_course_visit_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_course_visit_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "person_id", name=op.f("pk_course_visit")),
    )
    op.create_table(
        "digest_subscription",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("last_sent_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_digest_subscription_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_digest_subscription_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "person_id", name=op.f("pk_digest_subscription")),
    )
    op.create_table(
        "moodle_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("moodle_group_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("synced_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_moodle_group_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moodle_group")),
        sa.UniqueConstraint(
            "course_id", "moodle_group_id", name=op.f("uq_moodle_group_course_id_moodle_group_id")
        ),
    )
    op.create_table(
        "moodle_group_member",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["moodle_group.id"],
            name=op.f("fk_moodle_group_member_group_id_moodle_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_moodle_group_member_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "person_id", name=op.f("pk_moodle_group_member")),
    )
    op.create_table(
        "contact",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("sent_by", sa.Integer(), nullable=True),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("moodle_msgid", sa.Integer(), nullable=True),
        sa.Column(
            "prediction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("pass_probability", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "channel IN ('message', 'address_list')", name=op.f("ck_contact_channel")
        ),
        sa.CheckConstraint(
            "status IN ('sent', 'refused', 'unknown', 'failed', 'listed')",
            name=op.f("ck_contact_status"),
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_contact_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_contact_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["prediction.id"],
            name=op.f("fk_contact_prediction_id_prediction"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sent_by"], ["person.id"], name="fk_contact_sent_by_person", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
    )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index("ix_contact_batch", ["batch"], unique=False)
        batch_op.create_index(
            "ix_contact_course_person_at", ["course_id", "person_id", "at"], unique=False
        )

    op.create_table(
        "follow_up",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("moodle_note_id", sa.Integer(), nullable=True),
        sa.Column(
            "prediction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("was_flagged", sa.Boolean(), nullable=True),
        sa.CheckConstraint(
            "status IS NULL OR status IN ('contacted', 'met', 'no_action', 'flag_wrong')",
            name=op.f("ck_follow_up_status"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["person.id"], name="fk_follow_up_author_id_person", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_follow_up_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_follow_up_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["prediction.id"],
            name=op.f("fk_follow_up_prediction_id_prediction"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up")),
    )
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.create_index(
            "ix_follow_up_course_person_at", ["course_id", "person_id", "at"], unique=False
        )

    with op.batch_alter_table("moodle_site", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unavailable_features", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("moodle_site", schema=None) as batch_op:
        batch_op.drop_column("unavailable_features")

    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.drop_index("ix_follow_up_course_person_at")

    op.drop_table("follow_up")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_course_person_at")
        batch_op.drop_index("ix_contact_batch")

    op.drop_table("contact")
    op.drop_table("moodle_group_member")
    op.drop_table("moodle_group")
    op.drop_table("digest_subscription")
    op.drop_table("course_visit")
