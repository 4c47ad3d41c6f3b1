"""Configuration: TOML, environment overrides, and one clear line for every mistake."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from lti_app.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_give_embedded_sqlite_under_instance() -> None:
    settings = load_settings(None, environ={})
    assert settings.source == "defaults"
    assert settings.app.instance_path == "instance"
    url = settings.database_url
    assert url.startswith("sqlite:///")
    assert url.endswith("/instance/arche-predict.sqlite3")


def test_toml_values_are_read(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[app]\nport = 9100\n[database]\nurl = "sqlite:///x.db"\n')
    settings = load_settings(cfg, environ={})
    assert settings.app.port == 9100
    assert settings.database_url == "sqlite:///x.db"
    assert settings.source == str(cfg)


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[app]\nport = 9200\n")
    settings = load_settings(None, environ={"ARCHE_PREDICT_CONFIG": str(cfg)})
    assert settings.app.port == 9200


def test_environment_overrides_toml_with_typed_values(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[app]\nport = 9100\n[database]\necho = false\n")
    env = {
        "ARCHE_PREDICT_APP__PORT": "9300",
        "ARCHE_PREDICT_DATABASE__ECHO": "true",
        "ARCHE_PREDICT_MOODLE__REQUEST_TIMEOUT": "12.5",
        "ARCHE_PREDICT_SECURITY__PREVIOUS_ENCRYPTION_KEYS": "k1, k2",
        "ARCHE_PREDICT_TEST_SOMETHING": "ignored: no section separator",
    }
    settings = load_settings(cfg, environ=env)
    assert settings.app.port == 9300
    assert settings.database.echo is True
    assert settings.moodle.request_timeout == 12.5
    assert settings.security.previous_encryption_keys == ("k1", "k2")


def test_settings_are_frozen() -> None:
    settings = load_settings(None, environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.app.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[app]\nport = "eighty"\n', r"config\.toml: key 'app\.port': .*integer"),
        ("[app]\nport = 70000\n", r"config\.toml: key 'app\.port': .*less than or equal"),
        ("[app]\nprot = 8000\n", r"config\.toml: unknown key 'app\.prot'"),
        ("[databse]\nurl = ''\n", r"config\.toml: unknown key 'databse'"),
        ('[app]\nlog_level = "LOUD"\n', r"config\.toml: key 'app\.log_level'"),
        ('[database]\necho = "yes"\n', r"config\.toml: key 'database\.echo': .*boolean"),
        ("[app\nport = 1\n", r"config\.toml: not valid TOML"),
        ('[scheduler]\nnightly_at = "25:00"\n', r"key 'scheduler\.nightly_at'"),
    ],
)
def test_bad_toml_names_the_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    cfg = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    message = str(info.value)
    assert re.search(expected, message), message
    assert "\n" not in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"ARCHE_PREDICT_APP__PORT": "x"},
            r"ARCHE_PREDICT_APP__PORT: cannot read 'x' as app\.port",
        ),
        ({"ARCHE_PREDICT_APP__NOPE": "1"}, r"ARCHE_PREDICT_APP__NOPE: unknown key 'app\.nope'"),
        ({"ARCHE_PREDICT_NOPE__X": "1"}, r"ARCHE_PREDICT_NOPE__X: unknown section 'nope'"),
        ({"ARCHE_PREDICT_APP__PORT": "0"}, r"environment variable ARCHE_PREDICT_APP__PORT: key"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=env)
    assert re.search(expected, str(info.value)), str(info.value)


def test_require_secrets_names_the_missing_key() -> None:
    settings = load_settings(None, environ={})
    with pytest.raises(ConfigError, match=r"app\.secret_key is empty"):
        settings.require_secrets()
    settings = load_settings(None, environ={"ARCHE_PREDICT_APP__SECRET_KEY": "s"})
    with pytest.raises(ConfigError, match=r"security\.encryption_key is empty"):
        settings.require_secrets()


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if name == "source":
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _keys(ann, f"{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_example_documents_every_key_and_loads() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    listed = {f"{s}.{k}" for s, values in data.items() for k in values}
    assert listed == set(_keys(Settings))
    # Each key line is preceded by a comment line (its documentation).
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[i - 1].startswith("#"), f"undocumented key: {line}"
    settings = load_settings(EXAMPLE, environ={})
    assert settings.model_dump(exclude={"source"}) == Settings().model_dump(exclude={"source"})


def test_cli_broken_config_prints_one_line_without_traceback(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[app]\nport = "eighty"\n')
    result = subprocess.run(
        [sys.executable, "-m", "lti_app.cli", "--config", str(cfg), "db", "current"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "app.port" in lines[0]
    assert str(cfg) in lines[0]
