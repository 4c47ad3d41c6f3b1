"""initial schema: sites, LTI, courses, people, logs, grades, sync, models, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_lock",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_lock")),
    )
    op.create_table(
        "moodle_site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ws_token_encrypted", sa.Text(), nullable=True),
        sa.Column("log_source", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("release", sa.String(length=100), nullable=True),
        sa.Column("site_info", sa.JSON(), nullable=True),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "log_source IN ('ws', 'db', 'csv')", name=op.f("ck_moodle_site_log_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moodle_site")),
        sa.UniqueConstraint("base_url", name=op.f("uq_moodle_site_base_url")),
    )
    op.create_table(
        "tool_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_tool_key_kid")),
    )
    op.create_table(
        "course",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("moodle_course_id", sa.Integer(), nullable=False),
        sa.Column("shortname", sa.String(length=255), nullable=False),
        sa.Column("fullname", sa.String(length=500), nullable=False),
        sa.Column("lti_context_id", sa.String(length=255), nullable=True),
        sa.Column("start_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("grade_max", sa.Float(), nullable=True),
        sa.Column("pass_mark", sa.Float(), nullable=True),
        sa.Column("learner_view_enabled", sa.Boolean(), nullable=False),
        sa.Column("sync_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["moodle_site.id"],
            name=op.f("fk_course_site_id_moodle_site"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course")),
        sa.UniqueConstraint(
            "site_id", "moodle_course_id", name=op.f("uq_course_site_id_moodle_course_id")
        ),
    )
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.create_index(
            "ix_course_site_id_lti_context_id", ["site_id", "lti_context_id"], unique=False
        )

    op.create_table(
        "log_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("moodle_log_id", sa.BigInteger(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("eventname", sa.String(length=255), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("objecttable", sa.String(length=50), nullable=True),
        sa.Column("objectid", sa.BigInteger(), nullable=True),
        sa.Column("crud", sa.String(length=1), nullable=False),
        sa.Column("edulevel", sa.SmallInteger(), nullable=False),
        sa.Column("contextid", sa.BigInteger(), nullable=True),
        sa.Column("contextlevel", sa.Integer(), nullable=False),
        sa.Column("contextinstanceid", sa.BigInteger(), nullable=False),
        sa.Column("userid", sa.BigInteger(), nullable=False),
        sa.Column("relateduserid", sa.BigInteger(), nullable=True),
        sa.Column("courseid", sa.BigInteger(), nullable=False),
        sa.Column("timecreated", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.CheckConstraint("crud IN ('c', 'r', 'u', 'd')", name=op.f("ck_log_event_crud")),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["moodle_site.id"],
            name=op.f("fk_log_event_site_id_moodle_site"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_event")),
        sa.UniqueConstraint(
            "site_id", "content_hash", name=op.f("uq_log_event_site_id_content_hash")
        ),
        sa.UniqueConstraint(
            "site_id", "moodle_log_id", name=op.f("uq_log_event_site_id_moodle_log_id")
        ),
    )
    with op.batch_alter_table("log_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_log_event_course_time", ["site_id", "courseid", "timecreated"], unique=False
        )
        batch_op.create_index(
            "ix_log_event_course_user_time",
            ["site_id", "courseid", "userid", "timecreated"],
            unique=False,
        )

    op.create_table(
        "lti_platform",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("auth_login_url", sa.String(length=500), nullable=False),
        sa.Column("auth_token_url", sa.String(length=500), nullable=False),
        sa.Column("key_set_url", sa.String(length=500), nullable=False),
        sa.Column("auth_audience", sa.String(length=500), nullable=True),
        sa.Column("key_set_cache", sa.JSON(), nullable=True),
        sa.Column("key_set_fetched_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["moodle_site.id"],
            name=op.f("fk_lti_platform_site_id_moodle_site"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_platform")),
        sa.UniqueConstraint("issuer", "client_id", name=op.f("uq_lti_platform_issuer_client_id")),
    )
    op.create_table(
        "course_lineage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("past_course_id", sa.Integer(), nullable=False),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("course_id <> past_course_id", name=op.f("ck_course_lineage_not_self")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_course_lineage_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["past_course_id"],
            ["course.id"],
            name=op.f("fk_course_lineage_past_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_lineage")),
        sa.UniqueConstraint(
            "course_id", "past_course_id", name=op.f("uq_course_lineage_course_id_past_course_id")
        ),
    )
    op.create_table(
        "grade_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("moodle_item_id", sa.Integer(), nullable=False),
        sa.Column("itemname", sa.String(length=500), nullable=False),
        sa.Column("itemtype", sa.String(length=30), nullable=False),
        sa.Column("itemmodule", sa.String(length=50), nullable=True),
        sa.Column("iteminstance", sa.Integer(), nullable=True),
        sa.Column("cmid", sa.Integer(), nullable=True),
        sa.Column("grademin", sa.Float(), nullable=False),
        sa.Column("grademax", sa.Float(), nullable=False),
        sa.Column("gradepass", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_grade_item_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grade_item")),
        sa.UniqueConstraint(
            "course_id", "moodle_item_id", name=op.f("uq_grade_item_course_id_moodle_item_id")
        ),
    )
    op.create_table(
        "lti_deployment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platform.id"],
            name=op.f("fk_lti_deployment_platform_id_lti_platform"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_deployment")),
        sa.UniqueConstraint(
            "platform_id", "deployment_id", name=op.f("uq_lti_deployment_platform_id_deployment_id")
        ),
    )
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("estimator", sa.String(length=100), nullable=False),
        sa.Column("artifact_path", sa.String(length=500), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("data_hash", sa.String(length=64), nullable=False),
        sa.Column("gate_passed", sa.Boolean(), nullable=False),
        sa.Column("gate_reason", sa.Text(), nullable=True),
        sa.Column("trained_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "task IN ('regression', 'classification')", name=op.f("ck_model_version_task")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_model_version_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
        sa.UniqueConstraint("version", name=op.f("uq_model_version_version")),
    )
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.create_index(
            "ix_model_version_course_task", ["course_id", "task", "trained_at"], unique=False
        )

    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("moodle_user_id", sa.Integer(), nullable=True),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("lti_sub", sa.String(length=255), nullable=True),
        sa.Column("fullname", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platform.id"],
            name=op.f("fk_person_platform_id_lti_platform"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["moodle_site.id"],
            name=op.f("fk_person_site_id_moodle_site"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("platform_id", "lti_sub", name=op.f("uq_person_platform_id_lti_sub")),
        sa.UniqueConstraint(
            "site_id", "moodle_user_id", name=op.f("uq_person_site_id_moodle_user_id")
        ),
    )
    op.create_table(
        "sync_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_sync_cursor_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_cursor")),
        sa.UniqueConstraint("course_id", "stream", name=op.f("uq_sync_cursor_course_id_stream")),
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("pages_total", sa.Integer(), nullable=True),
        sa.Column("events_added", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_sync_run_status"),
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_sync_run_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["moodle_site.id"],
            name=op.f("fk_sync_run_site_id_moodle_site"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_run")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_run_course_started", ["course_id", "started_at"], unique=False
        )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_audit_event_course_id_course"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_audit_event_person_id_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platform.id"],
            name=op.f("fk_audit_event_platform_id_lti_platform"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action", ["action"], unique=False)
        batch_op.create_index("ix_audit_event_at", ["at"], unique=False)

    op.create_table(
        "enrolment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_enrolment_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_enrolment_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment")),
        sa.UniqueConstraint(
            "course_id", "person_id", "role", name=op.f("uq_enrolment_course_id_person_id_role")
        ),
    )
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.create_index("ix_enrolment_person_id", ["person_id"], unique=False)

    op.create_table(
        "grade",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grade_item_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("graded_at", lti_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grade_item_id"],
            ["grade_item.id"],
            name=op.f("fk_grade_grade_item_id_grade_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_grade_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grade")),
        sa.UniqueConstraint(
            "grade_item_id", "person_id", name=op.f("uq_grade_grade_item_id_person_id")
        ),
    )
    with op.batch_alter_table("grade", schema=None) as batch_op:
        batch_op.create_index("ix_grade_person_id", ["person_id"], unique=False)

    op.create_table(
        "prediction",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("regression_model_id", sa.Integer(), nullable=True),
        sa.Column("classification_model_id", sa.Integer(), nullable=True),
        sa.Column("as_of", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("predicted_grade", sa.Float(), nullable=True),
        sa.Column("grade_lower", sa.Float(), nullable=True),
        sa.Column("grade_upper", sa.Float(), nullable=True),
        sa.Column("pass_probability", sa.Float(), nullable=True),
        sa.Column("probability_lower", sa.Float(), nullable=True),
        sa.Column("probability_upper", sa.Float(), nullable=True),
        sa.Column("uncertainty", sa.Float(), nullable=True),
        sa.Column("predicted_pass", sa.Boolean(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=True),
        sa.Column("created_at", lti_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["classification_model_id"],
            ["model_version.id"],
            name=op.f("fk_prediction_classification_model_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_prediction_course_id_course"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_prediction_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["regression_model_id"],
            ["model_version.id"],
            name=op.f("fk_prediction_regression_model_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction")),
    )
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.create_index("ix_prediction_course_as_of", ["course_id", "as_of"], unique=False)
        batch_op.create_index("ix_prediction_person_as_of", ["person_id", "as_of"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_person_as_of")
        batch_op.drop_index("ix_prediction_course_as_of")

    op.drop_table("prediction")
    with op.batch_alter_table("grade", schema=None) as batch_op:
        batch_op.drop_index("ix_grade_person_id")

    op.drop_table("grade")
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_index("ix_enrolment_person_id")

    op.drop_table("enrolment")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_at")
        batch_op.drop_index("ix_audit_event_action")

    op.drop_table("audit_event")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_run_course_started")

    op.drop_table("sync_run")
    op.drop_table("sync_cursor")
    op.drop_table("person")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_index("ix_model_version_course_task")

    op.drop_table("model_version")
    op.drop_table("lti_deployment")
    op.drop_table("grade_item")
    op.drop_table("course_lineage")
    op.drop_table("lti_platform")
    with op.batch_alter_table("log_event", schema=None) as batch_op:
        batch_op.drop_index("ix_log_event_course_user_time")
        batch_op.drop_index("ix_log_event_course_time")

    op.drop_table("log_event")
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_index("ix_course_site_id_lti_context_id")

    op.drop_table("course")
    op.drop_table("tool_key")
    op.drop_table("moodle_site")
    op.drop_table("job_lock")
