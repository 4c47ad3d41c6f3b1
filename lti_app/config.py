"""Settings: read once, from one TOML file and prefixed environment variables.

This is the only module that reads the environment (`os.environ`). Everything else receives a
frozen :class:`Settings` object, so the web app, the scheduler and the CLI agree on the
configuration, and tests can build settings without touching the process environment.

Precedence, lowest first: the defaults below, the TOML file (``--config`` or
``ARCHE_PREDICT_CONFIG``), then ``ARCHE_PREDICT_<SECTION>__<KEY>`` environment variables.
A wrong type or an unknown key stops start-up with one line naming the key and its source.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

ENV_PREFIX = "ARCHE_PREDICT_"
CONFIG_ENV = "ARCHE_PREDICT_CONFIG"


class ConfigError(Exception):
    """A configuration problem, worded for the person starting the tool (one line, no traceback)."""


class _Section(BaseModel):
    # Strict: a TOML string where a number is expected is a mistake worth reporting, not coercing.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def is_loopback_host(host: str) -> bool:
    """`localhost`, `*.localhost` or a loopback address: a browser reaches only this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AppSettings(_Section):
    secret_key: str = ""
    instance_path: str = "instance"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    # Declared before public_url: its validator reads this value.
    allow_insecure_http: bool = False
    public_url: str = ""
    proxy_count: int = Field(default=0, ge=0, le=5)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # A launch form carries a signed id_token: Moodle's, with the Names and Roles and grade
    # service claims and a long custom section, is 10-20 KB. Nothing the tool accepts is larger.
    max_request_bytes: int = Field(default=65536, ge=8192, le=16 * 1024 * 1024)
    # The JSON API takes small bodies only (a what-if is a few hundred bytes).
    max_api_request_bytes: int = Field(default=16384, ge=1024, le=16 * 1024 * 1024)
    hsts_max_age: int = Field(default=31536000, ge=0, le=2 * 31536000)
    metrics_allow_from: tuple[str, ...] = Field(default=("127.0.0.1", "::1"), strict=False)
    metrics_token: str = ""

    @field_validator("public_url")
    @classmethod
    def _public_url_is_usable(cls, value: str, info: ValidationInfo) -> str:
        """An http:// public URL breaks the session inside Moodle's iframe (a third-party
        cookie must be `Secure`), and sends launch tokens in clear: refuse it, except on this
        machine (the demo) or when the operator says so explicitly."""
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise PydanticCustomError(
                "public_url", "must be an absolute https:// URL, e.g. https://predict.example.fr"
            )
        insecure_allowed = bool(info.data.get("allow_insecure_http", False))
        if parts.scheme == "http" and not is_loopback_host(parts.hostname) and not insecure_allowed:
            raise PydanticCustomError(
                "public_url",
                "http:// is refused outside this machine (Moodle's iframe needs Secure "
                "cookies): use https://, or set app.allow_insecure_http = true",
            )
        return value

    @field_validator("metrics_allow_from")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise PydanticCustomError(
                    "ip_network",
                    "'{item}' is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)",
                    {"item": item},
                ) from None
        return value

    @field_validator("metrics_token")
    @classmethod
    def _token_is_long(cls, value: str) -> str:
        if value and len(value) < 24:
            raise PydanticCustomError(
                "metrics_token",
                "too short: use at least 24 random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            )
        return value

    @property
    def secure(self) -> bool:
        """Whether the tool is published over HTTPS (Secure cookies, HSTS)."""
        return self.public_url.startswith("https://")


class DatabaseSettings(_Section):
    url: str = ""
    echo: bool = False
    pool_size: int = Field(default=5, ge=1, le=100)


class SecuritySettings(_Section):
    encryption_key: str = ""
    previous_encryption_keys: tuple[str, ...] = Field(default=(), strict=False)


class MoodleSettings(_Section):
    @field_validator("log_source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        """One of the sources declared in `lti_app.log_sources` (the registry)."""
        from lti_app.log_source_names import DECLARED

        if value not in DECLARED:
            raise ValueError(f"must be one of {', '.join(DECLARED)}")
        return value

    request_timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=10)
    log_source: str = "ws"
    page_size: int = Field(default=5000, ge=1, le=5000)
    timezone: str = "Europe/Paris"
    db_log_url: str = ""
    db_log_table: str = Field(
        default="mdl_logstore_standard_log",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
    )


class SchedulerSettings(_Section):
    enabled: bool = True
    nightly_at: str = Field(default="02:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "Europe/Paris"
    # Where the nightly per-course work runs (#19): "in_process" (the scheduler does each
    # course itself; the only choice on SQLite) or "procrastinate" (the scheduler queues one
    # job per course in PostgreSQL and `arche-predict worker` processes, on any number of
    # machines, take them: retries, one job per course at a time, stalled workers' jobs
    # retried).
    queue: Literal["in_process", "procrastinate"] = "in_process"


class MLSettings(_Section):
    grade_max: float = Field(default=20.0, gt=0)
    pass_mark: float = Field(default=10.0, ge=0)
    # A pass chance under this is "at risk", unless a teacher sets another for the course.
    risk_threshold: float = Field(default=0.5, ge=0.05, le=0.95)
    random_seed: int = 42
    min_past_offerings: int = Field(default=2, ge=2, le=50)
    # A course without enough past offerings gets a site-wide model trained on at least this
    # many other courses of its site (leave-one-course-out validation, gated like any model);
    # 0 turns the site-wide model off.
    site_model_min_courses: int = Field(default=3, ge=0, le=1000)
    # The site-wide model trains on at most this many of the other courses' graded offerings,
    # the newest first (training time grows with them).
    site_model_max_offerings: int = Field(default=24, ge=2, le=1000)
    regressors: tuple[str, ...] = Field(default=(), strict=False)
    classifiers: tuple[str, ...] = Field(default=(), strict=False)
    threshold_metric: Literal["f1", "balanced_accuracy"] = "f1"
    bootstrap_samples: int = Field(default=1000, ge=50, le=100_000)
    permutation_repeats: int = Field(default=30, ge=2, le=1000)
    mc_dropout_passes: int = Field(default=100, ge=10, le=10_000)
    training_threads: int = Field(default=1, ge=1, le=256)


class LtiSettings(_Section):
    leeway_seconds: int = Field(default=10, ge=0, le=300)
    launch_token_ttl: int = Field(default=900, ge=60, le=86400)
    session_lifetime: int = Field(default=28800, ge=300, le=604800)
    login_state_ttl: int = Field(default=600, ge=60, le=3600)
    jwks_max_age: int = Field(default=86400, ge=60, le=2592000)
    key_overlap_days: int = Field(default=7, ge=0, le=365)
    http_timeout: float = Field(default=10.0, gt=0, le=120)


class RetentionSettings(_Section):
    """How long each kind of record is kept (#18, item 4); 0 keeps it for ever. Applied each
    night by the scheduler's `retention` job. Course data is counted from the course's end (a
    course without an end date is never purged by age); logs of who did what from their date.
    Expired LTI sessions, login states and nonces go every night regardless (`purge-lti`)."""

    events_days_after_end: int = Field(default=1095, ge=0, le=36500)
    predictions_days_after_end: int = Field(default=1095, ge=0, le=36500)
    follow_ups_days_after_end: int = Field(default=1095, ge=0, le=36500)
    audit_days: int = Field(default=365, ge=0, le=36500)
    access_log_days: int = Field(default=365, ge=0, le=36500)


class PrivacySettings(_Section):
    """What learners may be shown about others (#18, item 6)."""

    # Below this many students in a course, a learner's page shows no comparison with the
    # course (median, quartiles): with a handful of classmates it tells about them. The
    # teacher's dashboard then says the estimates rest on few students.
    min_group_size: int = Field(default=10, ge=2, le=1000)
    # The fairness audit (#18, item 7): a gap between two declared groups larger than this
    # (in the metric's unit: 0.10 is ten points of a share or of ranking quality), whose 95 %
    # interval excludes zero, is flagged on the model card.
    fairness_gap: float = Field(default=0.10, gt=0.0, le=1.0)
    # Students a group needs before it is compared with the others: a smaller group's figures
    # are shown but too noisy to raise a flag.
    fairness_min_group: int = Field(default=20, ge=5, le=10000)


class DemoSettings(_Section):
    enabled: bool = False
    moodle_port: int = Field(default=8081, ge=0, le=65535)
    platform_port: int = Field(default=8001, ge=0, le=65535)
    past_offerings: int = Field(default=4, ge=2, le=20)
    students: int = Field(default=60, ge=10, le=5000)
    progress: float = Field(default=0.5, gt=0.0, le=1.0)
    seed: int = 7


class Settings(_Section):
    """The whole configuration. Frozen: nothing may change it after start-up."""

    app: AppSettings = AppSettings()
    database: DatabaseSettings = DatabaseSettings()
    security: SecuritySettings = SecuritySettings()
    moodle: MoodleSettings = MoodleSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    ml: MLSettings = MLSettings()
    demo: DemoSettings = DemoSettings()
    lti: LtiSettings = LtiSettings()
    retention: RetentionSettings = RetentionSettings()
    privacy: PrivacySettings = PrivacySettings()
    source: str = Field(default="defaults", exclude=True)

    @property
    def instance_dir(self) -> Path:
        return Path(self.app.instance_path)

    @property
    def model_root(self) -> Path:
        """Where model versions are stored (absolute: `load_model` checks every artifact path
        stays inside it, and a relative root would depend on the working directory)."""
        return self.instance_dir.resolve() / "models"

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under the instance folder."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.instance_dir / 'arche-predict.sqlite3').resolve()}"

    def require_secrets(self) -> None:
        """Fail loudly when a secret needed to serve is missing: never fall back to plain text."""
        hint = "run `arche-predict config init` to write a config with fresh secrets"
        if not self.app.secret_key:
            raise ConfigError(f"{self.source}: app.secret_key is empty; {hint}")
        if not self.security.encryption_key:
            raise ConfigError(f"{self.source}: security.encryption_key is empty; {hint}")


def _format_error(err: ValidationError, source_of: Mapping[str, str]) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    origin = source_of.get(key, source_of.get("", "config"))
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{key}'"
    if any(word in key for word in ("secret", "token", "password", "encryption_key")):
        # The refused value of a secret is still a secret: the line may end up in a log.
        return f"{origin}: key '{key}': {first['msg']} (value not shown)"
    return f"{origin}: key '{key}': {first['msg']} (got {first.get('input')!r})"


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Turn ARCHE_PREDICT_<SECTION>__<KEY> variables into a nested dict of typed values."""
    overrides: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    sections = {n: f for n, f in Settings.model_fields.items() if n != "source"}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name[len(ENV_PREFIX) :]:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in sections:
            raise ConfigError(f"environment variable {name}: unknown section '{section}'")
        model = sections[section].annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        if key not in model.model_fields:
            raise ConfigError(f"environment variable {name}: unknown key '{section}.{key}'")
        annotation = model.model_fields[key].annotation
        value: Any = raw
        try:
            if annotation is None:  # pragma: no cover - every field is annotated
                raise ValueError("untyped key")
            if getattr(annotation, "__origin__", None) is tuple:
                value = (
                    tuple(json.loads(raw))
                    if raw.startswith("[")
                    else tuple(p.strip() for p in raw.split(",") if p.strip())
                )
            else:
                value = TypeAdapter(annotation).validate_strings(raw)
        except (ValidationError, ValueError) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(
                f"environment variable {name}: cannot read {raw!r} as {section}.{key}: {why}"
            ) from None
        overrides.setdefault(section, {})[key] = value
        sources[f"{section}.{key}"] = f"environment variable {name}"
    return overrides, sources


PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prometheus_multiprocess_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The folder where gunicorn workers share metrics, when `serve` set one up.

    `arche-predict serve` sets it for its workers; prometheus_client reads the same variable.
    """
    env = os.environ if environ is None else environ
    return env.get(PROMETHEUS_ENV) or None


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings from `path` (or $ARCHE_PREDICT_CONFIG), then apply environment overrides.

    `environ` defaults to the process environment; tests pass a dict instead.
    """
    env = os.environ if environ is None else environ
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        file = Path(path)
        source = str(file)
        try:
            with file.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    sources = {"": source}
    for section, values in data.items():
        if isinstance(values, dict):
            for key in values:
                sources[f"{section}.{key}"] = source
        else:
            sources[section] = source
    overrides, env_sources = _env_overrides(env)
    sources.update(env_sources)
    for section, values in overrides.items():
        current = data.setdefault(section, {})
        if isinstance(current, dict):
            current.update(values)
    if "source" in data:
        raise ConfigError(f"{source}: unknown key 'source'")
    try:
        # TOML values are validated strictly; environment values were already converted above.
        return Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, sources)) from None
