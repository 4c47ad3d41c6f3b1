"""Logs are structured JSON and never carry tokens or keys."""

from __future__ import annotations

import json
import logging

import pytest

from lti_app.observability import MASK, configure_logging, get_logger, redact

MOODLE_TOKEN = "0123456789abcdef0123456789abcdef"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_structlog_lines_are_json_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    get_logger("test").info(
        "calling moodle",
        url=f"https://m.example/webservice/rest/server.php?wstoken={MOODLE_TOKEN}&x=1",
        token=MOODLE_TOKEN,
        id_token=JWT,
        detail={"private_key": PEM, "nested": [f"Bearer {JWT}"]},
        courseid=42,
    )
    (line,) = _lines(capsys)
    raw = json.dumps(line)
    assert MOODLE_TOKEN not in raw
    assert JWT not in raw
    assert "BEGIN PRIVATE KEY" not in raw
    assert line["event"] == "calling moodle"
    assert line["courseid"] == 42
    assert line["token"] == MASK
    assert str(line["url"]).endswith(f"wstoken={MASK}&x=1")
    assert line["level"] == "info"


def test_stdlib_loggers_are_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("werkzeug").warning("GET /x?token=%s HTTP/1.1", MOODLE_TOKEN)
    (line,) = _lines(capsys)
    assert MOODLE_TOKEN not in json.dumps(line)
    assert line["logger"] == "werkzeug"


def test_exceptions_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        raise ValueError(f"bad answer for wstoken={MOODLE_TOKEN}")
    except ValueError:
        get_logger("test").exception("failed")
    (line,) = _lines(capsys)
    assert MOODLE_TOKEN not in json.dumps(line)
    assert "ValueError" in str(line["exception"])


def test_redact_leaves_ordinary_values_alone() -> None:
    value = {"course": "Algo 101", "count": 3, "password": "", "ids": [1, 2]}
    assert redact(value) == value
