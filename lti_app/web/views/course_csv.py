"""The at-risk table as a spreadsheet (`/course/<id>/students.csv` and `.xlsx`): every row and
column the server holds, not only what the page's table shows.

Both files speak the reader's language (the launch's locale): the headers are the dashboard's
own words (features by their labels from `ml.feature_info`, through `wording.label`), and
yes/no columns read "Yes"/"No" ("Oui"/"Non"). The French CSV is the one a French spreadsheet
opens as columns and numbers: ";" between cells and "," as decimal mark. Both CSVs are UTF-8
with a BOM (Excel then reads accents right). The `.xlsx` holds numbers as numbers (pass chances
as fractions shown as percentages), whatever the reader's locale. In both, a grade and a chance
have four significant digits, each on its side of the pass mark and the at-risk threshold (as
on the pages: a stored 0.4961 flagged under 50 % never reads "50%").

Names and other text are neutralised against formula injection: the CSV through
`services.exports`, the workbook by storing every text as a string cell, never a formula.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from flask_babel import get_locale

from lti_app.services.exports import SafeCsvWriter
from lti_app.web.i18n import (
    Line,
    chance_lines,
    end_rounding,
    mark_lines,
    percent_text,
    sided_finest,
)
from lti_app.web.views.wording import _, label
from ml.feature_info import CSV_ENGAGEMENT

Kind = Literal["id", "grade", "share", "number", "yes_no", "text"]


@dataclass(frozen=True)
class Column:
    """One column of the table: its header in the reader's language, its kind (how the
    workbook formats it), where its value comes from, and for a range's end which one."""

    header: str
    kind: Kind
    value: Callable[[Mapping[str, Any]], Any]
    end: str | None = None


@dataclass(frozen=True)
class Lines:
    """The course's lines a grade and a chance are kept on their side of, in the file as on the
    page (`i18n.sided`): the pass mark the estimates were made for, the at-risk threshold. A
    spreadsheet rounds too: Excel would show a stored 0.4961 as "50%" beside "At risk: Yes"."""

    mark: float | None
    threshold: float | None

    @cached_property
    def of_kind(self) -> dict[str, tuple[Line | None, ...]]:
        """The lines of a grade column and of a chance column, built once per file."""
        return {"grade": mark_lines(self.mark), "share": chance_lines(self.threshold)}


def _key(key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda s: s.get(key)


def _interval(key: str, end: int) -> Callable[[Mapping[str, Any]], Any]:
    return lambda s: (s.get(key) or [None, None])[end]


def _engagement(feature: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda s: (s.get("engagement") or {}).get(feature)


def _factors(s: Mapping[str, Any]) -> str:
    return "; ".join(label(f["feature"]) for f in (s.get("factors") or {}).get("pass", [])[:3])


def columns(scale: float, *, fraction: bool) -> list[Column]:
    """The table's columns, in order: who, the estimates, the engagement figures the CSV keeps
    (`ml.feature_info.CSV_ENGAGEMENT`), the top factors of the pass chance. `fraction`: the
    pass chance's header says it is written from 0 to 1 (the CSV; the workbook shows it as a
    percentage)."""
    chance = _("Chance of passing (0 to 1)") if fraction else _("Chance of passing")
    return [
        Column(_("Person id (this tool)"), "id", _key("person_id")),
        Column(_("Moodle user id"), "id", _key("moodle_user_id")),
        Column(_("Student"), "text", _key("fullname")),
        Column(
            _("Predicted grade (out of %(scale)s)", scale=f"{scale:g}"),
            "grade",
            _key("predicted_grade"),
        ),
        Column(_("Grade range, low end"), "grade", _interval("grade_interval", 0), "low"),
        Column(_("Grade range, high end"), "grade", _interval("grade_interval", 1), "high"),
        Column(chance, "share", _key("pass_probability")),
        Column(
            _("Chance of passing, low end"), "share", _interval("probability_interval", 0), "low"
        ),
        Column(
            _("Chance of passing, high end"),
            "share",
            _interval("probability_interval", 1),
            "high",
        ),
        Column(_("Predicted to pass"), "yes_no", _key("predicted_pass")),
        Column(_("At risk"), "yes_no", _key("at_risk")),
        *(Column(label(f), "number", _engagement(f)) for f in CSV_ENGAGEMENT),
        Column(_("Main factors"), "text", _factors),
    ]


def _yes_no(value: Any) -> Any:
    if value is None:
        return None
    return _("Yes") if value else _("No")


#: Significant digits of a file's grades and chances, both files alike.
SIGNIFICANT = 4


def _places(value: float) -> int:
    """The decimals that give `value` its `SIGNIFICANT` digits (9.957, 12.35, 0.4961)."""
    if value == 0:
        return SIGNIFICANT - 1
    return max(0, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))


def _cell(column: Column, student: Mapping[str, Any], lines: Lines) -> Any:
    """A cell's value: a grade or a chance to four significant digits, kept on its side of
    the course's lines (finer where a line needs it), as the pages keep theirs."""
    value = column.value(student)
    if value is None:
        return None
    if column.kind == "yes_no":
        return _yes_no(value)
    if column.kind in ("grade", "share"):
        v, how = float(value), end_rounding(column.end)
        return sided_finest(v, _places(v), lines.of_kind[column.kind], how)[0]
    if column.kind == "number" and isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT}g}")
    return value


def _cells(cols: Sequence[Column], student: Mapping[str, Any], lines: Lines) -> list[Any]:
    return [_cell(c, student, lines) for c in cols]


def _is_french() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "fr"


def students_csv(students: Sequence[Mapping[str, Any]], *, scale: float, lines: Lines) -> str:
    """The at-risk table as CSV, numbers to four significant digits (grades and chances on their
    side of `lines`, see `_cell`); French: ";" and ","."""
    cols = columns(scale, fraction=True)
    buf = io.StringIO()
    french = _is_french()
    writer = SafeCsvWriter(
        buf,
        float_format=".6g",  # grades and chances are rounded already (`_cell`)
        delimiter=";" if french else ",",
        decimal="," if french else ".",
    )
    writer.writerow([c.header for c in cols])
    writer.writerows(_cells(cols, s, lines) for s in students)
    return "\ufeff" + buf.getvalue()


#: How the workbook shows each kind of number: a grade or a chance is the file's (`_cell`,
#: four significant digits on its side of the lines), shown whole, so Excel rounds it no more.
_XLSX_FORMATS: dict[Kind, str] = {"grade": "0.0##", "share": "0.0##%", "number": "0.##"}


def _share_format() -> str:
    """A chance as the pages word it at its ends ("under 5 %", "over 95 %": never "0%" or
    "100%"), in the reader's language, through the format's conditions."""
    under = _("under %(p)s", p=percent_text(0.05)).replace('"', "")
    over = _("over %(p)s", p=percent_text(0.95)).replace('"', "")
    return f'[<0.05]"{under}";[>0.95]"{over}";{_XLSX_FORMATS["share"]}'


def students_xlsx(students: Sequence[Mapping[str, Any]], *, scale: float, lines: Lines) -> bytes:
    """The at-risk table as an Excel workbook: one sheet, a bold frozen header row, numbers
    stored as numbers. Text cells are strings, never formulas (a name starting with "=" stays
    that name), with the characters XML cannot hold removed."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    cols = columns(scale, fraction=False)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = _("Students")[:31]
    sheet.append([c.header for c in cols])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    formats = _XLSX_FORMATS | {"share": _share_format()}
    for row, student in enumerate(students, start=2):
        cells = _cells(cols, student, lines)
        for col, (column, value) in enumerate(zip(cols, cells, strict=True), 1):
            if value is None:
                continue
            target = sheet.cell(row=row, column=col)
            if isinstance(value, str):
                target.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                target.data_type = "s"  # never a formula, whatever its first character
            else:
                target.value = value
                if column.kind in formats:
                    target.number_format = formats[column.kind]
    sheet.column_dimensions["C"].width = 28
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
