"""URL converters shared by every blueprint.

Werkzeug's `int` converter accepts any number of digits. A person or course id of 2**63 then
reaches the database, where PostgreSQL's INTEGER overflows (a DataError) and SQLite's driver
raises OverflowError: a 500 from a URL anyone can type. Our row ids are INTEGER primary keys,
so `<id:...>` matches only 1 to 2**31 - 1 and anything else is a plain 404 before any query.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

ID_MAX = 2**31 - 1  # the largest INTEGER on PostgreSQL (SQLite's is wider)


class IdConverter(IntegerConverter):
    """A database row id: digits only, 1 to `ID_MAX`, no sign and no leading zero."""

    regex = r"[1-9]\d{0,9}"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=ID_MAX)


def install(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
