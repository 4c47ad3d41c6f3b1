"""docs/stored-data.md documents every stored column (#18, item 8: data minimisation): a column
added without a stated purpose, or one documented after it is gone, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import lti_app.models  # noqa: F401  (registers the tables)
from lti_app.db import Base

DOC = Path(__file__).resolve().parents[1] / "docs" / "stored-data.md"
KINDS = {"no", "identifies", "about a person", "pseudonymous id"}


def _sections() -> dict[str, dict[str, tuple[str, str]]]:
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(r"^### (\w+)\n(.*?)(?=^### |^## |\Z)", text, flags=re.S | re.M)
    return {
        table: {
            col: (purpose.strip(), kind.strip())
            for col, purpose, kind in re.findall(
                r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", body, flags=re.M
            )
        }
        for table, body in found
    }


def test_every_column_has_a_documented_purpose() -> None:
    documented = _sections()
    schema = {t.name: [c.name for c in t.columns] for t in Base.metadata.sorted_tables}
    assert sorted(documented) == sorted(schema)
    for table, columns in schema.items():
        assert list(documented[table]) == columns, table
        for column, (purpose, kind) in documented[table].items():
            assert len(purpose) >= 10, (table, column)
            assert kind in KINDS, (table, column, kind)
