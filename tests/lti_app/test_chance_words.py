"""How a pass chance and its range are worded (issue #14, item 2): never "0 %" or "100 %", a
range always containing the value shown beside it, never "± x" across a bound. Property tests
over every value and range, in English and French."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from hypothesis import given
from hypothesis import strategies as st

from lti_app.web.i18n import chance_range_text, chance_text

APP = Flask(__name__)
Babel(APP, default_translation_directories="translations")
APP.root_path = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "lti_app")

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def numbers_in(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def value_bounds(text: str) -> tuple[int, int]:
    """The whole percents a worded value stands for: "under 5 %" is 0-4, "42 %" is 42."""
    [n] = numbers_in(text)
    if text.startswith(("under", "moins")):
        return 0, n - 1
    if text.startswith(("over", "plus")):
        return n + 1, 100
    return n, n


def range_bounds(text: str) -> tuple[int, int]:
    numbers = numbers_in(text)
    if text.startswith(("up to", "jusqu")):
        return 0, numbers[0]
    if text.startswith(("at least", "au moins")):
        return numbers[0], 100
    if text.startswith(("anywhere", "de ")):
        return 0, 100
    return numbers[0], numbers[1]


@pytest.mark.parametrize("locale", ["en", "fr"])
@given(a=unit, b=unit, c=unit)
def test_the_range_contains_the_value_and_no_bound_is_said(
    locale: str, a: float, b: float, c: float
) -> None:
    low, p, high = sorted((a, b, c))
    with APP.test_request_context(), force_locale(locale):
        value, span = chance_text(p), chance_range_text([low, high])
    assert not re.search(r"(?<![\d,.])(0|100)\s?%", value), value
    assert not re.search(r"(?<![\d,.])(0|100)\s?%", span), span
    assert "±" not in span
    if locale == "en":
        v_low, v_high = value_bounds(value)
        r_low, r_high = range_bounds(span)
        # Some number the value stands for lies inside the range.
        assert max(v_low, r_low) <= min(v_high, r_high), (p, low, high, value, span)


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.0, "under 5 %"), (0.049, "under 5 %"), (0.05, "5 %"), (0.5, "50 %"), (0.95, "95 %"),
     (0.951, "over 95 %"), (1.0, "over 95 %")],
)  # fmt: skip
def test_values_in_words(p: float, text: str) -> None:
    with APP.test_request_context(), force_locale("en"):
        assert chance_text(p).replace("\xa0", " ") == text


@pytest.mark.parametrize(
    ("bounds", "text"),
    [((0.4, 0.7), "between 40 % and 70 %"), ((0.01, 0.28), "up to 28 %"),
     ((0.6, 0.99), "at least 60 %"), ((0.0, 1.0), "anywhere from under 5 % to over 95 %"),
     ((0.553, 0.801), "between 55 % and 81 %")],
)  # fmt: skip
def test_ranges_in_words(bounds: tuple[float, float], text: str) -> None:
    with APP.test_request_context(), force_locale("en"):
        assert chance_range_text(list(bounds)).replace("\xa0", " ") == text
