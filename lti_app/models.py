"""The tool's tables, as SQLAlchemy 2.0 typed models.

Moodle identifiers (course id, user id, log id, grade item id) are kept next to our own surrogate
keys, always scoped by the Moodle site, because one tool may serve several Moodle sites and the
same numbers mean different things on each. Secrets are stored only encrypted (see
`lti_app.crypto`); the columns that hold them end in ``_encrypted``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, BigIntPK, UTCDateTime, utcnow
from lti_app.log_source_names import DECLARED

# --------------------------------------------------------------------------- Moodle sites


class MoodleSite(Base):
    """A Moodle installation the tool reads from, e.g. ARCHE at Université de Lorraine."""

    __tablename__ = "moodle_site"

    id: Mapped[int] = mapped_column(primary_key=True)
    base_url: Mapped[str] = mapped_column(String(500), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ws_token_encrypted: Mapped[str | None] = mapped_column(Text)
    log_source: Mapped[str] = mapped_column(String(8), default="ws")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    release: Mapped[str | None] = mapped_column(String(100))
    site_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The teacher actions (#16) this site's token cannot do, as `moodle check` or the last
    # attempt found: {feature: the explanation shown where the feature would be}. Empty or NULL:
    # none known to be missing.
    unavailable_features: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Whether a past offering a teacher links from the dashboard (#17) waits for an
    # administrator's approval on the admin page before its data is pulled and trains models.
    link_approval_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Whose data the tool uses (#18, item 2): "teacher" (everyone's, and each course's
    # teacher decides whether its learners may opt out) or "opt_in" (only learners who said
    # yes: nobody else's estimate is made or shown, nor their data trained on).
    consent_mode: Mapped[str] = mapped_column(
        String(16), default="teacher", server_default="teacher"
    )
    # The roster attributes an administrator declared lawful and relevant for the fairness
    # audit (#18, item 7), e.g. ["department"] or ["profile_field_bourse"]: only these are
    # stored (`person_attribute`), and the model card reports the estimates' quality per group
    # of each. Empty (the default): none stored, no audit.
    fairness_groups: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # The names come from the registry, so the constraint cannot drift from it (a new declared
    # source needs a migration re-creating it: tests/test_migrations.py compares the two).
    __table_args__ = (
        CheckConstraint(
            "log_source IN ({})".format(", ".join(f"'{name}'" for name in DECLARED)),
            name="log_source",
        ),
    )


# --------------------------------------------------------------------------- LTI


class LtiPlatform(Base):
    """One LTI 1.3 registration: an issuer and a client id, with the platform's endpoints."""

    __tablename__ = "lti_platform"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("moodle_site.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(500))
    auth_token_url: Mapped[str] = mapped_column(String(500))
    key_set_url: Mapped[str] = mapped_column(String(500))
    auth_audience: Mapped[str | None] = mapped_column(String(500))
    key_set_cache: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    key_set_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    site: Mapped[MoodleSite | None] = relationship()
    deployments: Mapped[list[LtiDeployment]] = relationship(
        back_populates="platform", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("issuer", "client_id"),)


class LtiDeployment(Base):
    __tablename__ = "lti_deployment"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    platform: Mapped[LtiPlatform] = relationship(back_populates="deployments")

    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)


class ToolKey(Base):
    """The tool's own RSA key pair. The private half is encrypted; retired keys stay published
    in the JWKS for an overlap period so in-flight platform caches keep validating."""

    __tablename__ = "tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(16), default="RS256")
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LtiStoredValue(Base):
    """pylti1p3's launch-data storage, shared by every worker and process through the database.

    Holds login states (with their nonce), single-use nonces and validated launch data, each with
    an expiry. A nonce or state is consumed by deleting its row, which only one request can do.
    """

    __tablename__ = "lti_stored_value"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_lti_stored_value_expires_at", "expires_at"),)


class LtiSession(Base):
    """The server-side session opened by a launch, bound to platform, course, person and role.

    Only a hash of the session id is stored: a database reader cannot take over a session. The id
    travels in a cookie, or, when the browser blocks cookies in Moodle's iframe, in a short-lived
    signed launch token.
    """

    __tablename__ = "lti_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    message_type: Mapped[str] = mapped_column(String(64))
    launch_id: Mapped[str | None] = mapped_column(String(100))
    csrf_token: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("role IN ('learner', 'teacher', 'admin')", name="role"),
        Index("ix_lti_session_expires_at", "expires_at"),
    )


# --------------------------------------------------------------------------- courses and people


class Course(Base):
    """A Moodle course, i.e. one offering. Past offerings of the same teaching are other Course
    rows linked through `CourseLineage`."""

    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("moodle_site.id", ondelete="CASCADE"))
    moodle_course_id: Mapped[int] = mapped_column(Integer)
    shortname: Mapped[str] = mapped_column(String(255), default="")
    fullname: Mapped[str] = mapped_column(String(500), default="")
    lti_context_id: Mapped[str | None] = mapped_column(String(255))
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    grade_max: Mapped[float | None] = mapped_column(Float)
    # The tool's pass mark for this course, on its scale (`grade_max`), set by a teacher; it
    # wins over Moodle's. NULL: Moodle's (`moodle_gradepass`, raw, out of `moodle_grademax`,
    # from the companion plugin), else the configured default.
    pass_mark: Mapped[float | None] = mapped_column(Float)
    pass_mark_set_by: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL", name="fk_course_pass_mark_set_by_person")
    )
    pass_mark_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    moodle_gradepass: Mapped[float | None] = mapped_column(Float)
    moodle_grademax: Mapped[float | None] = mapped_column(Float)
    # A pass chance under this is "at risk" on every surface; NULL: the site default.
    risk_threshold: Mapped[float | None] = mapped_column(Float)
    learner_view_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Whether the course's learners may opt out of the estimates (#18, item 2; the teacher
    # decides, within the site's `consent_mode`).
    opt_out_allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    sync_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    site: Mapped[MoodleSite] = relationship()

    __table_args__ = (
        UniqueConstraint("site_id", "moodle_course_id"),
        Index("ix_course_site_id_lti_context_id", "site_id", "lti_context_id"),
    )


#: A link's states: `active` trains the course's models; `pending` waits for an administrator
#: (the site requires approval of teachers' links); `rejected` was refused and trains nothing.
LINK_STATUSES = ("active", "pending", "rejected")


class CourseLineage(Base):
    """`past_course` is an earlier offering whose outcomes train the models for `course`.

    Linked by an administrator on the command line (`requested_by` empty, active at once) or by
    a teacher from the dashboard (#17), who must have taught the past course in Moodle; on a
    site that requires approval a teacher's link stays `pending` until an administrator decides
    (`decided_by`, `decided_at`)."""

    __tablename__ = "course_lineage"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    past_course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("course_id", "past_course_id"),
        CheckConstraint("course_id <> past_course_id", name="not_self"),
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in LINK_STATUSES)), name="status"
        ),
    )


class Person(Base):
    """A human known to Moodle (user id) and/or to LTI (the id_token `sub` of a platform)."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("moodle_site.id", ondelete="CASCADE"))
    moodle_user_id: Mapped[int | None] = mapped_column(Integer)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("lti_platform.id", ondelete="SET NULL")
    )
    lti_sub: Mapped[str | None] = mapped_column(String(255))
    fullname: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("site_id", "moodle_user_id"),
        UniqueConstraint("platform_id", "lti_sub"),
    )


class Enrolment(Base):
    """A person's role in a course, as the roster sync or an LTI launch last saw it."""

    __tablename__ = "enrolment"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(16), default="ws")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship()

    __table_args__ = (
        UniqueConstraint("course_id", "person_id", "role"),
        Index("ix_enrolment_person_id", "person_id"),
    )


# --------------------------------------------------------------------------- logs and grades


class LogEvent(Base):
    """One row of Moodle's standard log, keyed by Moodle's log id, which is unique per site.

    Moodle ids are kept raw (`courseid`, `userid`) rather than as foreign keys: logs arrive before
    the roster knows everybody, and a bulk insert must not look anything up. CSV imports carry no
    log id; they are de-duplicated on `content_hash` instead.

    This is the one table written at volume (the ingest target is 50k events/s), so it carries
    only what the reads and the de-duplication need (migration 0004):

    - `site_id` is not a foreign key either. PostgreSQL checks a foreign key row by row with a
      locking lookup of the site (``SELECT ... FOR KEY SHARE``), which was a third of the cost
      of a COPY. The writers take the site id from a course row in the same transaction, and a
      trigger on ``moodle_site`` (created by the migration) still deletes a deleted site's
      events, as the old ``ON DELETE CASCADE`` did.
    - the two identities are partial unique indexes: web-service rows have no content hash and
      CSV rows no log id, and a full index would still hold one useless NULL entry per row.
    - both time indexes stay: (site, course, user, time) serves one student's events and
      index-only weekly aggregates; (site, course, time) answers a course's first and last
      event (the dashboard asks on every request) in a few index pages, where the other needs
      a scan of all the course's entries (1M events: 0.7 ms against 320 ms). It costs the
      ingest well under a tenth.
    """

    __tablename__ = "log_event"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    site_id: Mapped[int] = mapped_column(Integer)
    moodle_log_id: Mapped[int | None] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    eventname: Mapped[str] = mapped_column(String(255))
    component: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(100))
    objecttable: Mapped[str | None] = mapped_column(String(50))
    objectid: Mapped[int | None] = mapped_column(BigInteger)
    crud: Mapped[str] = mapped_column(String(1))
    edulevel: Mapped[int] = mapped_column(SmallInteger)
    contextid: Mapped[int | None] = mapped_column(BigInteger)  # the CSV download has none
    contextlevel: Mapped[int] = mapped_column(Integer)
    contextinstanceid: Mapped[int] = mapped_column(BigInteger)
    userid: Mapped[int] = mapped_column(BigInteger)
    relateduserid: Mapped[int | None] = mapped_column(BigInteger)
    courseid: Mapped[int] = mapped_column(BigInteger)
    timecreated: Mapped[int] = mapped_column(BigInteger)
    origin: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(8), default="ws")

    __table_args__ = (
        Index(
            "uq_log_event_site_id_moodle_log_id",
            "site_id",
            "moodle_log_id",
            unique=True,
            postgresql_where=text("moodle_log_id IS NOT NULL"),
            sqlite_where=text("moodle_log_id IS NOT NULL"),
        ),
        Index(
            "uq_log_event_site_id_content_hash",
            "site_id",
            "content_hash",
            unique=True,
            postgresql_where=text("content_hash IS NOT NULL"),
            sqlite_where=text("content_hash IS NOT NULL"),
        ),
        # Feature queries: one course's events up to an as-of time, per user.
        Index("ix_log_event_course_time", "site_id", "courseid", "timecreated"),
        Index("ix_log_event_course_user_time", "site_id", "courseid", "userid", "timecreated"),
        CheckConstraint("crud IN ('c', 'r', 'u', 'd')", name="crud"),
    )


class GradeItem(Base):
    __tablename__ = "grade_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    moodle_item_id: Mapped[int] = mapped_column(Integer)
    itemname: Mapped[str] = mapped_column(String(500), default="")
    itemtype: Mapped[str] = mapped_column(String(30))
    itemmodule: Mapped[str | None] = mapped_column(String(50))
    iteminstance: Mapped[int | None] = mapped_column(Integer)
    cmid: Mapped[int | None] = mapped_column(Integer)
    grademin: Mapped[float] = mapped_column(Float, default=0.0)
    grademax: Mapped[float] = mapped_column(Float, default=100.0)
    gradepass: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("course_id", "moodle_item_id"),)


class Grade(Base):
    __tablename__ = "grade"

    id: Mapped[int] = mapped_column(primary_key=True)
    grade_item_id: Mapped[int] = mapped_column(ForeignKey("grade_item.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    value: Mapped[float | None] = mapped_column(Float)
    # This user's maximum for the item. Moodle's natural aggregation ("exclude empty grades")
    # gives each user's course total its own maximum (120 with the quiz graded, 100 without),
    # so one maximum per item cannot scale every user. NULL (rows from before migration 0005):
    # the item's `grademax`.
    grade_max: Mapped[float | None] = mapped_column(Float)
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("grade_item_id", "person_id"),
        Index("ix_grade_person_id", "person_id"),
    )


# --------------------------------------------------------------------------- sync


class SyncRun(Base):
    """One sync attempt, kept for the admin's sync history and the dashboard's progress bar."""

    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("moodle_site.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    source: Mapped[str] = mapped_column(String(8), default="ws")
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    pages_total: Mapped[int | None] = mapped_column(Integer)
    events_added: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_sync_run_course_started", "course_id", "started_at"),
        CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')", name="status"),
    )


class SyncRequest(Base):
    """A "Sync now" asked from the dashboard, waiting for the scheduler process to run it.

    The web never syncs itself (a sync outlives a request and must not run in a web worker);
    it records the request, and the scheduler claims it (`picked_at`) and links its `SyncRun`,
    whose page counts feed the dashboard's progress bar.
    """

    __tablename__ = "sync_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    picked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    picked_by: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_run.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # `sync`: the course itself. `backfill` (#17): first each newly linked past offering that
    # has never been synced, then the course, which is then scored. `steps_total` is the number
    # of courses to sync, `steps_done` those finished, so the progress bar spans them all.
    kind: Mapped[str] = mapped_column(String(16), default="sync", server_default="sync")
    steps_total: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    steps_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("ix_sync_request_pending", "picked_at", "requested_at"),)


class SyncCursor(Base):
    """Where the next incremental read of one stream resumes (the last Moodle log id seen).

    It is written in the same transaction as the page it covers, so a crash never skips or
    repeats events.
    """

    __tablename__ = "sync_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(32))
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("course_id", "stream"),)


class JobLock(Base):
    """A lease that lets only one scheduler process run a given job at a time."""

    __tablename__ = "job_lock"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRun(Base):
    """A scheduled job's last run, by job name (whatever its slot or course), for the admin page:
    `running` from its start, then `ok` or `failed` with a short detail."""

    __tablename__ = "job_run"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="")


# --------------------------------------------------------------------------- models and predictions


class ModelVersion(Base):
    """A trained model, its evaluation and its quality gate. Predictions of a version whose
    `gate_passed` is false are never shown to anyone."""

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64), unique=True)
    task: Mapped[str] = mapped_column(String(16))
    estimator: Mapped[str] = mapped_column(String(100))
    artifact_path: Mapped[str] = mapped_column(String(500))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    features: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    metadata_json: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    data_hash: Mapped[str] = mapped_column(String(64))
    gate_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    gate_reason: Mapped[str | None] = mapped_column(Text)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # When a person whose data this version learned from was erased (#18, `privacy erase`):
    # the version is never reused (the next scoring retrains on what is left) and its artifact
    # goes once it is no longer active.
    erased_data_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_model_version_course_task", "course_id", "task", "trained_at"),
        CheckConstraint("task IN ('regression', 'classification')", name="task"),
    )


class Prediction(Base):
    """One student's estimate as of a time, with its uncertainty and its explanation."""

    __tablename__ = "prediction"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    regression_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version.id", ondelete="CASCADE")
    )
    classification_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version.id", ondelete="CASCADE")
    )
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    predicted_grade: Mapped[float | None] = mapped_column(Float)
    grade_lower: Mapped[float | None] = mapped_column(Float)
    grade_upper: Mapped[float | None] = mapped_column(Float)
    pass_probability: Mapped[float | None] = mapped_column(Float)
    probability_lower: Mapped[float | None] = mapped_column(Float)
    probability_upper: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    predicted_pass: Mapped[bool | None] = mapped_column(Boolean)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_prediction_course_as_of", "course_id", "as_of"),
        Index("ix_prediction_person_as_of", "person_id", "as_of"),
    )


# --------------------------------------------------------------------------- audit


class AuditEvent(Base):
    """Security-relevant facts: rejected launches, role changes, configuration edits.

    `details` must never hold a secret or a raw token; callers pass reasons, not payloads.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("lti_platform.id", ondelete="SET NULL")
    )
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="SET NULL"))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_event_at", "at"), Index("ix_audit_event_action", "action"))


# --------------------------------------------------------------------------- teacher actions (#16)

#: A follow-up's status words, in the order the form offers them. "flag_wrong" is a teacher's
#: verdict on the prediction it was recorded against (the model card counts them).
FOLLOW_UP_STATUSES = ("contacted", "met", "no_action", "flag_wrong")
#: A contact's result per recipient: Moodle delivered it (`sent`), Moodle would not (`refused`:
#: the learner's preferences, a user that does not exist; Moodle's reason kept), no answer came
#: (`unknown`: it may have been delivered, so it is never resent), the whole service failed
#: (`failed`: messaging disabled, a missing capability), or the teacher copied the address
#: (`listed`, when messaging is unavailable).
CONTACT_STATUSES = ("sent", "refused", "unknown", "failed", "listed")


class Contact(Base):
    """One recipient of one contact a teacher made from the tool: by whom, when, how, with which
    template and text, Moodle's answer, and the pass chance shown at the time (what the effect
    of contacts is measured from)."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    sent_by: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL", name="fk_contact_sent_by_person")
    )
    # One send of one message to several students shares a batch (the results page reads it).
    batch: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    moodle_msgid: Mapped[int | None] = mapped_column(Integer)
    prediction_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("prediction.id", ondelete="SET NULL")
    )
    pass_probability: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_contact_course_person_at", "course_id", "person_id", "at"),
        Index("ix_contact_batch", "batch"),
        CheckConstraint("channel IN ('message', 'address_list')", name="channel"),
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in CONTACT_STATUSES)), name="status"
        ),
    )


class FollowUp(Base):
    """A teacher's note and/or status about one student, kept as a history (the latest status
    is the one in force). Teacher-only: learners never see it. `moodle_note_id` when the
    teacher mirrored it as a Moodle course note."""

    __tablename__ = "follow_up"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL", name="fk_follow_up_author_id_person")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    moodle_note_id: Mapped[int | None] = mapped_column(Integer)
    prediction_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("prediction.id", ondelete="SET NULL")
    )
    # Whether the student was flagged (at risk) by that prediction when the status was set.
    was_flagged: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        Index("ix_follow_up_course_person_at", "course_id", "person_id", "at"),
        CheckConstraint(
            "status IS NULL OR status IN ({})".format(
                ", ".join(f"'{s}'" for s in FOLLOW_UP_STATUSES)
            ),
            name="status",
        ),
    )


class CourseVisit(Base):
    """A teacher's visits to a course's dashboard: `seen_at` the latest, `before_at` the one
    before it (a visit more than an hour after the last), so the page can mark the students who
    became at risk since then."""

    __tablename__ = "course_visit"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    before_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DigestSubscription(Base):
    """A teacher's weekly digest for one course (off unless they turn it on), in their
    language, sent through Moodle messaging after the nightly scoring."""

    __tablename__ = "digest_subscription"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str] = mapped_column(String(8), default="en")
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MoodleGroup(Base):
    """A Moodle group of a course as the last sync (or a group action) saw it, for filtering the
    dashboard by group."""

    __tablename__ = "moodle_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    moodle_group_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("course_id", "moodle_group_id"),)


class MoodleGroupMember(Base):
    __tablename__ = "moodle_group_member"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("moodle_group.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )


# --------------------------------------------------------------------------- coursework (#16)


class CourseworkItem(Base):
    """A course module as Moodle last described it (`core_course_get_contents`), with the dates
    of assignments (`mod_assign_get_assignments`) and quizzes (`mod_quiz_get_quizzes_by_courses`):
    what the student page lists as work due and as resources opened or not."""

    __tablename__ = "coursework_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    cmid: Mapped[int] = mapped_column(Integer)
    modname: Mapped[str] = mapped_column(String(50))
    # The activity's own id (assign.id, quiz.id): what the gradebook's `iteminstance` names.
    instance: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500), default="")
    section: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An assignment's due date, a quiz's closing time.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cutoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An assignment Moodle collects nothing for (handed in outside Moodle, marked only).
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("course_id", "cmid"),)


class CourseworkStatus(Base):
    """One student's latest assignment submission (Moodle's status and when it last changed)
    and activity completion (Moodle's state: 0 incomplete, 1 complete, 2 passed, 3 failed) for
    one item. Late, missing or not yet due is read against the item's dates when shown, so a
    deadline passing needs no sync. Quiz attempts are not stored: the log and the gradebook
    tell them."""

    __tablename__ = "coursework_status"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("coursework_item.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    submission: Mapped[str | None] = mapped_column(String(16))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completion: Mapped[int | None] = mapped_column(SmallInteger)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_coursework_status_person_id", "person_id"),)


class CourseworkSync(Base):
    """When each coursework feature of a course was last read from Moodle ({feature: time}),
    so that a page can tell "nothing there" (read, empty) from "never read"; a feature the
    site cannot give is in `moodle_site.unavailable_features` instead."""

    __tablename__ = "coursework_sync"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LiveValidation(Base):
    """How right the estimates shown during a finished term turned out (#17, item 3), one row
    per course, recomputed by the scoring after a sync once the term has ended and final grades
    are in: per week of the term, the flagged and not-flagged students' outcomes, the ranking
    and calibration of the chances, the grade ranges' coverage, and the drift codes where they
    fall outside what validation promised (`ml.live_validation.score_weeks`)."""

    __tablename__ = "live_validation"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    pass_mark: Mapped[float] = mapped_column(Float)
    n_students: Mapped[int] = mapped_column(Integer)
    drift: Mapped[bool] = mapped_column(Boolean, default=False)
    weeks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The fairness audit of the same weeks (#18, item 7), per declared attribute: the rows of
    # `ml.fairness.fairness_report` (per week and metric: each group's value and size, the gap,
    # its 95 % interval, whether it is flagged). NULL when the site declares no attribute.
    fairness: Mapped[dict[str, list[dict[str, Any]]] | None] = mapped_column(JSON)


#: What kind of read an access-log row records (#18, item 5).
ACCESS_KINDS = (
    "student_page", "learner_page", "export", "api_student", "api_students", "dashboard",
)  # fmt: skip


class AccessLog(Base):
    """Who viewed whose prediction, and when (#18, item 5): a teacher's page of one student, a
    learner's own page, a course table exported (CSV or Excel: every student at once, no
    `subject_id`), an API read of one student or of the list. Readable by administrators, with
    its own retention (`retention.access_log_days`). A subject erased takes their rows along;
    a viewer erased leaves the row without a viewer."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    viewer_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint(
            "kind IN ({})".format(", ".join(f"'{k}'" for k in ACCESS_KINDS)), name="kind"
        ),
        Index("ix_access_log_at", "at"),
        Index("ix_access_log_subject_id", "subject_id"),
    )


class PersonAttribute(Base):
    """One roster attribute of a person that the site's administrator declared for the
    fairness audit (#18, item 7; `moodle_site.fairness_groups`), as the last roster sync read
    it. Nothing else of the roster's profile is kept; an attribute no longer declared is
    deleted, and an erased person's go with them."""

    __tablename__ = "person_attribute"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PageBuild(Base):
    """A built teacher dashboard shared by every web worker (#19, item 5): the page's
    session-independent part (its data sections rendered, and the plain data beside them) under
    the digest of its cache key, which changes with any of its inputs. Written at scoring time
    (`tasks.score_synced_course`) or by the first worker that builds it; read by the others
    instead of building the same page again. A course's older builds go when a newer is kept."""

    __tablename__ = "page_build"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), index=True)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[str] = mapped_column(Text)


class KeptObjection(Base):
    """A learner's objection that outlives their erasure (#18, items 2 and 3): erasing a person
    deletes their `learner_choice` rows with everything else, yet a learner still enrolled comes
    back at the next roster sync, and their objection must come back with them. So an erased
    "out" is kept here under the Moodle user id alone (no name, nothing else), and turned back
    into a `learner_choice` when that Moodle user is next stored (`sync.upsert_people`)."""

    __tablename__ = "kept_objection"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    moodle_user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LearnerChoice(Base):
    """A learner's choice about their data in one course (#18, item 2): "out" (no estimate of
    them made or shown, their data left out of every training set from then on) or "in" (on an
    opt-in site, the yes that lets the tool use it)."""

    __tablename__ = "learner_choice"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    choice: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint("choice IN ('in', 'out')", name="choice"),)
