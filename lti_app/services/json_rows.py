"""Data frames as JSON-ready rows, for the JSON columns that keep computed tables (the live
validation's weeks, the fairness audit's rows): NaN as None (JSON has no NaN), numpy scalars as
Python numbers, moments as ISO text; nested values (dicts of group figures) as they are."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                clean[str(key)] = value.isoformat()
            elif isinstance(value, float | np.floating) and np.isnan(value):
                clean[str(key)] = None
            elif isinstance(value, np.generic):
                clean[str(key)] = value.item()
            else:
                clean[str(key)] = value
        out.append(clean)
    return out


__all__ = ["json_rows"]
