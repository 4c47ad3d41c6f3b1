"""The CSV parser's fast paths agree with the slow ones: times read with the per-hour cache, second
by second, across offset changes; descriptions matched by one alternation of all templates."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodle_client import csv_logs
from moodle_client.csv_logs import DEFAULT_TIME_FORMATS, _parse_time
from moodle_client.csvfiles import CsvImportError
from moodle_client.requirements import normalise_label
from tests.moodle_client.conftest import FIXTURES


def _expected(zone: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=zone).timestamp())


@pytest.mark.parametrize(
    ("zone_name", "day", "hours"),
    [
        ("Europe/Paris", (2026, 3, 29), (1, 2, 3)),  # spring forward: 02:xx does not exist
        ("Europe/Paris", (2026, 10, 25), (1, 2, 3)),  # fall back: 02:xx happens twice
        ("Australia/Lord_Howe", (2026, 4, 5), (1, 2)),  # a half-hour change
        ("Asia/Kathmandu", (2026, 1, 1), (0,)),  # a +05:45 offset
    ],
)
def test_cached_hours_agree_with_zoned_datetimes(
    zone_name: str, day: tuple[int, int, int], hours: tuple[int, ...]
) -> None:
    zone = ZoneInfo(zone_name)
    hours_seen: dict[str, int] = {}
    y, mo, d = day
    for h in hours:
        for mi in range(60):
            for s in (0, 1, 29, 30, 31, 58, 59):
                text = f"{d}/{mo:02d}/{y % 100:02d}, {h:02d}:{mi:02d}:{s:02d}"
                got = _parse_time(1, text, zone, DEFAULT_TIME_FORMATS, hours_seen)
                assert got == _expected(zone, y, mo, d, h, mi, s), text
    assert hours_seen  # the cache was used


def test_an_hour_holding_an_offset_change_is_not_cached() -> None:
    """Liberia moved from -00:44:30 to GMT at 00:44:30 UTC on 7 January 1972: the local hour
    00 of that day holds the change, so its times are read one by one."""
    zone = ZoneInfo("Africa/Monrovia")
    hours_seen: dict[str, int] = {}
    for mi in (0, 30, 44, 45, 59):
        for s in range(60):
            text = f"7/01/72, 00:{mi:02d}:{s:02d}"
            assert _parse_time(1, text, zone, DEFAULT_TIME_FORMATS, hours_seen) == _expected(
                zone, 1972, 1, 7, 0, mi, s
            )
    assert "7/01/72, 00:" not in hours_seen


@pytest.mark.parametrize(
    "text", ["4/09/26, 09:29:60", "4/09/26, 09:60:00", "4/09/26, 09:75:12", "31/02/26, 09:29:26"]
)
def test_impossible_times_are_refused_even_after_their_hour_was_cached(text: str) -> None:
    zone = ZoneInfo("Europe/Paris")
    hours_seen: dict[str, int] = {}
    _parse_time(1, "4/09/26, 09:29:26", zone, DEFAULT_TIME_FORMATS, hours_seen)
    assert hours_seen
    with pytest.raises(CsvImportError, match="cannot read the time"):
        _parse_time(7, text, zone, DEFAULT_TIME_FORMATS, hours_seen)


def _descriptions(path: Path) -> list[str]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    index = [normalise_label(h) for h in rows[0]].index("description")
    return [r[index] for r in rows[1:] if len(r) > index]


def test_one_alternation_finds_the_template_a_loop_over_the_templates_finds() -> None:
    """The templates are tried as one regex; the first that matches must be the same one, with
    the same placeholders, as trying each template's own regex in order."""
    crafted = [
        "The user with id '7' viewed the course with id '2'.",
        "The user with id '7' viewed the section number '3' of the course with id '2'.",
        "The user with id '-1' viewed the 'quiz' activity with course module id '12'.",
        "The user with id '7' viewed the 'Quiz' activity with course module id '12'.",
        "The user with id '7' did something new.",
        "",
    ]
    descriptions = crafted + _descriptions(FIXTURES / "logs_export_en.csv")
    compiled = [(t, t.regex()) for t in csv_logs._TEMPLATES]
    matched = 0
    for description in descriptions:
        expected = None
        for template, pattern in compiled:
            found = pattern.fullmatch(description)
            if found is not None:
                expected = (template, found.groupdict())
                break
        match = csv_logs._ANY_TEMPLATE.fullmatch(description)
        if expected is None:
            assert match is None, description
            continue
        assert match is not None, description
        assert match.lastgroup is not None
        template, int_groups, mod_group = csv_logs._TEMPLATE_BY_GROUP[match.lastgroup]
        assert template is expected[0], description
        ints = {name: int(match.group(g)) for name, g in int_groups}
        assert ints == {k: int(v) for k, v in expected[1].items() if k in ints}, description
        assert set(ints) == set(expected[1]) & csv_logs._INT_FIELDS
        assert (match.group(mod_group) if mod_group else None) == expected[1].get("mod")
        matched += 1
    assert matched > len(descriptions) * 0.8
