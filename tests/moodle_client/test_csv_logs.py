"""The csv log source: Moodle 5.1's log-report downloads, English and French."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodle_client import (
    CsvImportError,
    CsvLogImport,
    CsvLogSource,
    LogRow,
    LogSource,
    read_log_csv,
)
from tests.moodle_client.conftest import FIXTURES

EN = FIXTURES / "logs_export_en.csv"
FR = FIXTURES / "logs_export_fr.csv"
TZ = "Europe/London"  # the recording user's timezone (fixtures README)


def _records(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def _write(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def english_import() -> CsvLogImport:
    return read_log_csv(EN, courseid=2, timezone=TZ)


@pytest.fixture(scope="module")
def french_import() -> CsvLogImport:
    return read_log_csv(FR, courseid=2, timezone=TZ)


@pytest.fixture(scope="module")
def english(english_import: CsvLogImport) -> tuple[LogRow, ...]:
    return english_import.rows


@pytest.fixture(scope="module")
def french(french_import: CsvLogImport) -> tuple[LogRow, ...]:
    return french_import.rows


def _head(path: Path, n: int = 300) -> list[list[str]]:
    """The header and the first ``n`` records: enough variety, a tenth of the parsing time."""
    return _records(path)[: n + 1]


def test_english_and_french_downloads_give_identical_events(
    english: tuple[LogRow, ...], french: tuple[LogRow, ...]
) -> None:
    assert len(english) == len(_records(EN)) - 1
    assert len(french) == len(_records(FR)) - 1
    # The English download holds one more row: the "Log report viewed" event that the French
    # download itself wrote (fixtures README). Everything else is the same, hashes included.
    in_french = set(french)
    extra = [row for row in english if row not in in_french]
    assert len(extra) == 1
    assert extra[0].eventname == "\\report_log\\event\\report_viewed"
    assert [row for row in english if row is not extra[0]] == list(french)
    assert english[-1] == extra[0], "the extra event is the newest one"


def test_every_recorded_event_is_recognised(
    english_import: CsvLogImport, french_import: CsvLogImport
) -> None:
    assert english_import.unknown_event_rows == 0
    assert french_import.unknown_event_rows == 0


def test_layout_is_detected(english_import: CsvLogImport, french_import: CsvLogImport) -> None:
    assert english_import.layout == "en"
    assert french_import.layout == "fr"


def test_times_are_read_in_the_given_timezone(english: tuple[LogRow, ...]) -> None:
    newest = _records(EN)[1][0]  # e.g. "22/11/26, 22:49:45", newest first
    day, month, rest = newest.split("/", 2)
    year, clock = rest.split(", ")
    hour, minute, second = (int(x) for x in clock.split(":"))
    for zone in (TZ, "Europe/Paris", "America/Montreal"):
        expected = datetime(
            2000 + int(year), int(month), int(day), hour, minute, second, tzinfo=ZoneInfo(zone)
        )
        newest_only = _write(_head(EN, 1))
        rows = read_log_csv(newest_only, courseid=2, timezone=zone).rows
        assert rows[-1].timecreated == int(expected.timestamp())
    assert (
        english[-1].timecreated
        == read_log_csv(_write(_head(EN, 1)), courseid=2, timezone=TZ).rows[0].timecreated
    )


def test_rows_come_out_oldest_first(english: tuple[LogRow, ...]) -> None:
    times = [r.timecreated for r in english]
    assert times == sorted(times)


def test_fields_are_derived_from_the_english_description(english: tuple[LogRow, ...]) -> None:
    records = _records(EN)[1:]
    # Pick, from the file itself, rows of known shapes and check what the description says.
    module_view = next(r for r in records if "activity with course module id" in r[6])
    user_id = int(module_view[6].split("'")[1])
    module = module_view[6].split("'")[3]
    cmid = int(module_view[6].split("'")[5])
    matches = [
        r
        for r in english
        if r.eventname == f"\\mod_{module}\\event\\course_module_viewed"
        and r.userid == user_id
        and r.contextinstanceid == cmid
    ]
    assert matches
    row = matches[0]
    assert (row.component, row.action, row.target, row.crud, row.edulevel) == (
        f"mod_{module}",
        "viewed",
        "course_module",
        "r",
        2,
    )
    assert (row.contextlevel, row.courseid, row.id, row.contextid) == (70, 2, None, None)
    assert row.origin == module_view[7]

    completion = next(r for r in records if "updated the completion state" in r[6])
    ids = [int(x) for x in completion[6].split("'")[1::2]]
    assert any(
        (r.userid, r.contextinstanceid, r.relateduserid) == tuple(ids)
        and r.eventname == "\\core\\event\\course_module_completion_updated"
        for r in english
    )


def test_content_hashes_are_unique_and_stable(english: tuple[LogRow, ...]) -> None:
    hashes = [r.content_hash for r in english]
    assert all(h is not None and len(h) == 64 for h in hashes)
    assert len(set(hashes)) == len(hashes)
    again = read_log_csv(EN.read_bytes(), courseid=2, timezone=TZ).rows
    assert [r.content_hash for r in again] == hashes


def test_reimporting_a_partial_download_adds_nothing(english: tuple[LogRow, ...]) -> None:
    records = _records(EN)
    older_half = [records[0], *records[len(records) // 2 :]]
    partial = read_log_csv(_write(older_half), courseid=2, timezone=TZ).rows
    assert len(partial) == len(older_half) - 1
    assert {r.content_hash for r in partial} <= {r.content_hash for r in english}


def test_identical_rows_are_distinct_events() -> None:
    records = _records(EN)
    doubled = [records[0], records[1], records[1], records[2]]
    rows = read_log_csv(_write(doubled), courseid=2, timezone=TZ).rows
    assert len(rows) == 3
    assert len({r.content_hash for r in rows}) == 3
    assert rows[1] != rows[2]


def test_semicolon_separated_file_reads_the_same(english: tuple[LogRow, ...]) -> None:
    rows = read_log_csv(_write(_records(EN), delimiter=";"), courseid=2, timezone=TZ).rows
    assert rows == english


def test_unknown_header_language_falls_back_to_position() -> None:
    records = _head(EN)
    german = [
        "Zeit",
        "Vollständiger Name",
        "Betroffene/r Nutzer/in",
        "Ereigniskontext",
        "Komponente",
        "Ereignisname",
        "Beschreibung",
        "Herkunft",
        "IP-Adresse",
    ]
    parsed = read_log_csv(_write([german, *records[1:]]), courseid=2, timezone=TZ)
    assert parsed.layout == "position"
    assert parsed.rows == read_log_csv(_write(records), courseid=2, timezone=TZ).rows


def test_headers_match_despite_case_accents_and_apostrophes() -> None:
    records = _head(FR)
    header = [
        "HEURE",
        "Nom complet de l\u2019utilisateur",
        "Utilisateur touche",
        "Contexte de l evenement".replace(" l ", " l'"),
        "composant",
        "Nom de l\u2019\u00c9v\u00e9nement",
        "DESCRIPTION",
        "Origine",
        "Adresse IP",
    ]
    expected = read_log_csv(_write(records), courseid=2, timezone=TZ).rows
    assert read_log_csv(_write([header, *records[1:]]), courseid=2, timezone=TZ).rows == expected


def test_header_columns_are_found_by_name_in_any_order() -> None:
    records = _head(EN)
    order = [6, 0, 8, 1, 5, 2, 4, 3, 7]
    shuffled = [[record[i] for i in order] for record in records]
    expected = read_log_csv(_write(records), courseid=2, timezone=TZ).rows
    assert read_log_csv(_write(shuffled), courseid=2, timezone=TZ).rows == expected


# ---------------------------------------------------------------- refusals


def test_wrong_header_row_is_refused_on_line_1() -> None:
    records = _records(EN)
    no_description = [[c for i, c in enumerate(r) if i != 6] for r in records]
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(no_description), courseid=2, timezone=TZ)
    assert caught.value.line == 1
    assert "'Description'" in caught.value.reason
    assert str(caught.value).startswith("line 1: ")


def test_a_grade_export_is_not_a_log_download() -> None:
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(FIXTURES / "grades_export_en.csv", courseid=2, timezone=TZ)
    assert caught.value.line == 1
    assert "not a Moodle log download" in caught.value.reason


def test_unparseable_date_is_refused_with_its_line() -> None:
    records = _records(EN)
    records[5][0] = "2026-11-22T10:00:00"
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(records), courseid=2, timezone=TZ)
    assert caught.value.line == 6  # header on line 1, records[5] on line 6
    assert "cannot read the time '2026-11-22T10:00:00'" in caught.value.reason


def test_line_numbers_count_multi_line_fields() -> None:
    records = _records(EN)
    records[2][1] = "Claire\nEnseignante"  # a quoted field spanning two lines
    records[4][0] = "yesterday"
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(records), courseid=2, timezone=TZ)
    assert caught.value.line == 6


def test_undecodable_encoding_is_refused_with_its_line() -> None:
    records = _head(EN, 20)
    records[7][1] = "H\u00e9l\u00e8ne Dupr\u00e9"  # the first non-ASCII text, on line 8
    assert all("".join(r).isascii() for r in records[:7])
    data = _write(records).decode("utf-8").encode("cp1252")
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(data, courseid=2, timezone=TZ)
    assert caught.value.line == 8
    assert "not valid utf-8" in caught.value.reason
    assert "byte 0xe9" in caught.value.reason


def test_latin1_french_header_is_refused_on_line_1() -> None:
    data = FR.read_text(encoding="utf-8-sig").encode("latin-1", errors="replace")
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(data, courseid=2, timezone=TZ)
    assert caught.value.line == 1


def test_a_declared_encoding_is_honoured(french: tuple[LogRow, ...]) -> None:
    data = FR.read_text(encoding="utf-8-sig").encode("cp1252")
    assert read_log_csv(data, courseid=2, timezone=TZ, encoding="cp1252").rows == french


def test_unknown_encoding_name_is_refused() -> None:
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(EN, courseid=2, timezone=TZ, encoding="klingon-8")
    assert caught.value.line == 1
    assert "unknown encoding" in caught.value.reason


def test_a_short_row_is_refused_with_its_line() -> None:
    records = _records(EN)
    records[3] = records[3][:5]
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(records), courseid=2, timezone=TZ)
    assert caught.value.line == 4
    assert "found 5" in caught.value.reason


def test_a_download_of_another_course_is_refused() -> None:
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(EN, courseid=3, timezone=TZ)
    assert "belongs to course 2" in caught.value.reason
    assert caught.value.line >= 2


def test_empty_file_is_refused() -> None:
    with pytest.raises(CsvImportError, match="empty"):
        read_log_csv(b"", courseid=2, timezone=TZ)


def test_unknown_timezone_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        read_log_csv(EN, courseid=2, timezone="Mars/Olympus")


# ---------------------------------------------------------------- the source


def test_unknown_events_are_kept_with_a_generic_reading() -> None:
    records = _records(EN)
    odd = records[1][:]
    odd[5] = "Badge awarded"
    odd[6] = "The user with id '12' awarded the badge with id '3' to the user with id '9'."
    parsed = read_log_csv(_write([records[0], odd]), courseid=2, timezone=TZ)
    [row] = parsed.rows
    assert parsed.unknown_event_rows == 1
    assert (row.userid, row.relateduserid, row.action) == (12, 9, "awarded")
    assert row.eventname == "csv:logs:badge_awarded"


def test_roster_names_fill_users_the_description_lacks() -> None:
    records = _records(EN)
    graded = next(r for r in records if "had automatic grading performed" in r[6])
    student = int(graded[6].split("user with id ")[1].split(" ")[0])
    # Without a roster: the line names the same person as actor and affected user, and the
    # description gives the affected user's id (never user 0).
    plain = read_log_csv(_write([records[0], graded]), courseid=2, timezone=TZ).rows[0]
    assert (plain.userid, plain.relateduserid) == (student, student)
    # A roster entry of the same name (a namesake elsewhere on the site, user 77) does not
    # override the id the description gives (it credited a course's graded quiz attempts to
    # namesakes from past offerings).
    named = read_log_csv(
        _write([records[0], graded]),
        courseid=2,
        timezone=TZ,
        users_by_fullname={graded[1]: 77},
    ).rows[0]
    assert (named.userid, named.relateduserid) == (student, student)


def test_csv_source_pages(english: tuple[LogRow, ...]) -> None:
    source = CsvLogSource.from_file(EN, courseid=2, timezone=TZ, page_size=1000)
    assert isinstance(source, LogSource)
    pages = list(source.pages())
    assert [len(p.rows) for p in pages] == [
        min(1000, len(english) - start) for start in range(0, len(english), 1000)
    ]
    assert all(p.cursor is None for p in pages)
    assert [p.hasmore for p in pages] == [True] * (len(pages) - 1) + [False]
    assert pages[0].remaining == len(english)
    assert tuple(r for p in pages for r in p.rows) == english


def test_prototype_file_name_imports(tmp_path: Path, english: tuple[LogRow, ...]) -> None:
    target = tmp_path / "logs_from_logs.csv"
    shutil.copy(EN, target)
    source = CsvLogSource.from_file(str(target), courseid=2, timezone=TZ)
    assert tuple(r for p in source.pages() for r in p.rows) == english


def test_a_refused_file_yields_no_source() -> None:
    records = _records(EN)
    records[-1][0] = "not a date"
    with pytest.raises(CsvImportError) as caught:
        CsvLogSource.from_file(_write(records), courseid=2, timezone=TZ)
    assert caught.value.line == len(records)


# ---------------------------------------------------------------- reading order
# `read_log_csv` derives the events from the download's last line to its first (`LogScan.rows`,
# so that a caller can store them as they come): what it reports must still be what a reading
# from the first line finds.


def test_the_first_failing_line_of_the_file_is_named() -> None:
    records = _records(EN)
    viewed = [i for i, r in enumerate(records) if r[6].endswith("viewed the course with id '2'.")]
    first, later = viewed[0], viewed[-1]
    assert later > first + 100
    for i in (first, later):
        records[i] = [*records[i]]
        records[i][6] = records[i][6].replace("course with id '2'", "course with id '3'")
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(records), courseid=2, timezone=TZ)
    assert caught.value.line == first + 1


def test_lines_out_of_time_order_are_put_in_order(english: tuple[LogRow, ...]) -> None:
    records = _records(EN)
    times = [r[0] for r in records]
    # Two lines of distinct times swapped: the same events, the same order.
    i, j = 40, 400
    assert times[i] != times[j]
    records[i], records[j] = records[j], records[i]
    assert read_log_csv(_write(records), courseid=2, timezone=TZ).rows == english


def test_kinds_examples_and_names_are_those_of_the_first_lines() -> None:
    records = _records(EN)
    header, base = records[0], records[1]
    lines = []
    for n, name in enumerate(["Ana First", "Ana Second", "Ana Third"]):
        odd = [*base]
        odd[1] = name
        odd[5] = "Badge awarded"
        odd[6] = f"The user with id '12' awarded the badge with id '{n}' to the user with id '9'."
        lines.append(odd)
    other = [*base]
    other[5], other[6] = "Cohort viewed", "The user with id '13' viewed the cohort with id '4'."
    parsed = read_log_csv(
        _write([header, lines[0], other, lines[1], other, lines[2], other]),
        courseid=2,
        timezone=TZ,
    )
    assert parsed.unknown_event_rows == 6
    # As many of each: the kind the file shows first comes first, with its first line.
    kinds = [(k.event, k.rows, k.line) for k in parsed.unknown_kinds]
    assert kinds == [("csv:logs:badge_awarded", 3, 2), ("csv:logs:cohort_viewed", 3, 3)]
    assert parsed.unknown_kinds[0].description.endswith(
        "the badge with id '0' to the user with id '9'."
    )
    assert parsed.people[12] == "Ana First"
    assert list(parsed.people) == [12, 13]  # in the order the file first names them


@pytest.mark.parametrize(("course_line", "time_line"), [(2, 11), (11, 2)])
def test_the_first_failing_line_is_named_whatever_its_reason(
    course_line: int, time_line: int
) -> None:
    """An event of another course is found while the events are derived, after every line's
    time was read: the earlier line of the two is still the one named."""
    records = _records(EN)[:12]
    viewed = next(r for r in _records(EN) if r[6].endswith("viewed the course with id '2'."))
    records[course_line - 1] = [*viewed]
    records[course_line - 1][6] = viewed[6].replace("id '2'", "id '3'")
    records[time_line - 1] = [*records[time_line - 1]]
    records[time_line - 1][0] = "not a time"
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(records), courseid=2, timezone=TZ)
    assert caught.value.line == min(course_line, time_line)
    assert ("belongs to course 3" if course_line < time_line else "cannot read the time") in (
        caught.value.reason
    )


def test_blank_records_are_skipped_and_lines_still_counted(english: tuple[LogRow, ...]) -> None:
    """A spreadsheet that saved empty rows (no text, or separators and spaces only) reads as
    the download itself, and a later line is still named by its place in the file."""
    records = _records(EN)
    width = len(records[0])
    blank = [[], [""] * width, [" "] * width, ["", " ", *[""] * (width - 2)]]
    padded = [records[0], *blank, *records[1:]]
    assert read_log_csv(_write(padded), courseid=2, timezone=TZ).rows == english
    padded[6] = [*padded[6]]
    padded[6][0] = "not a time"
    with pytest.raises(CsvImportError) as caught:
        read_log_csv(_write(padded), courseid=2, timezone=TZ)
    assert caught.value.line == 7
