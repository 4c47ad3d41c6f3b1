"""CSV exports that a spreadsheet opens as data, never as formulas ("CSV injection", OWASP).

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and a
leading tab or carriage return can hide such a start. Student names come from Moodle, where
anyone may name themself ``=HYPERLINK("http://evil","Click")``; written unchanged, that name
becomes a live link (or a command, through DDE) in the teacher's spreadsheet.

Every CSV the tool writes (the dashboard's table, ``arche-predict predict --csv``) goes through
:class:`SafeCsvWriter`, which prefixes a text cell that starts with one of those characters with
a single quote: spreadsheets then show the text as it was, quote hidden. Numbers are not text:
a cell given as an ``int`` or ``float`` is written as the number it is, so a negative trend of
``-0.25`` stays a number that sorts and sums. Only the type of the value decides, never its
look: a *name* ``-5`` is text and is neutralised.
"""

from __future__ import annotations

import csv
import numbers
from collections.abc import Iterable
from typing import IO, Final

#: The first characters that make a spreadsheet read a text cell as a formula (OWASP).
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it as text: prefixed with ``'`` when it could start a
    formula, else unchanged."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: object, float_format: str | None = None, decimal: str = ".") -> str:
    """One CSV cell: ``None`` is empty; a number (any integral or real type, numpy's included;
    booleans as words) is written as a number, with ``float_format`` for non-integers when
    given and ``decimal`` as its decimal mark (``","`` for a French spreadsheet); anything else
    is text, neutralised. A caller that wants booleans in the reader's words passes the words."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        text = format(number, float_format) if float_format else repr(number)
        return text.replace(".", decimal) if decimal != "." else text
    return neutralise(str(value))


class SafeCsvWriter:
    """A `csv.writer` whose every cell goes through :func:`cell`: the one way the tool writes
    CSV, so that no export can forget the neutralising."""

    def __init__(
        self,
        stream: IO[str],
        *,
        float_format: str | None = None,
        delimiter: str = ",",
        decimal: str = ".",
    ) -> None:
        if delimiter == decimal:
            raise ValueError("the delimiter and the decimal mark must differ")
        self._writer = csv.writer(stream, delimiter=delimiter)
        self._float_format = float_format
        self._decimal = decimal

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([cell(v, self._float_format, self._decimal) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


__all__ = ["FORMULA_STARTS", "SafeCsvWriter", "cell", "neutralise"]
