"""URL converters shared by every blueprint.

Werkzeug's `int` converter accepts any number of digits. A person or course id of 2**63 then
reaches the database, where PostgreSQL's INTEGER overflows (a DataError) and SQLite's driver
raises OverflowError: a 500 from a URL anyone can type. Our row ids are INTEGER primary keys,
so `<id:...>` matches only 1 to 2**31 - 1 and anything else is a plain 404 before any query.

The bound is in the regex, not only in `to_python`: a value refused by `to_python` makes
Werkzeug try the next rule, and where the same path has a rule for another method (GET and POST
`/api/v1/courses/<id>/sync`), it answered 405 "use POST" for a GET of 2147483648 instead of 404.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

ID_MAX = 2**31 - 1  # the largest INTEGER on PostgreSQL (SQLite's is wider)


def at_most_regex(limit: int) -> str:
    """A regex for the decimal numbers 1 to `limit`, without sign or leading zero: any shorter
    number, or one as long as `limit` that is smaller at its first differing digit."""
    digits = str(limit)
    n = len(digits)
    parts = [rf"[1-9]\d{{0,{n - 2}}}"] if n > 1 else []
    for i, d in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(d) > low:
            parts.append(rf"{digits[:i]}[{low}-{int(d) - 1}]\d{{{n - i - 1}}}")
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


class IdConverter(IntegerConverter):
    """A database row id: digits only, 1 to `ID_MAX`, no sign and no leading zero."""

    regex = at_most_regex(ID_MAX)

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=ID_MAX)


def install(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
