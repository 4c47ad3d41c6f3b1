"""How a pass chance and its range are worded (issue #14, item 2): never "0 %" or "100 %", a
range always containing the value shown beside it, never "± x" across a bound. Property tests
over every value and range, in English and French.

And how a shown number sits against the rules beside it: a chance shown under the at-risk
threshold exactly when the row is flagged, at least 50 % exactly when the grade shown is at or
above the pass mark, the grade inside its range as shown (`i18n.sided`)."""

from __future__ import annotations

import math
import re

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from hypothesis import given
from hypothesis import strategies as st

from lti_app.web.i18n import chance_range_text, chance_text, grade_text, sided

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


# --------------------------------------------------------------------------- against the rules


def shown_number(text: str) -> float:
    """The one number of a shown grade or chance ("9,9" in French)."""
    [n] = re.findall(r"\d+(?:[.,]\d+)?", text)
    return float(n.replace(",", "."))


def check_shown_estimate(
    grade: str, chance: str, flagged: bool, mark: float, threshold_percent: float
) -> None:
    """What a reader sees must agree with the rules the page states: the row is flagged exactly
    when the chance shown is under the threshold stated, and the chance shown is at least 50 %
    exactly when the grade shown is at or above the pass mark. A worded chance ("under 5 %",
    "over 95 %") stands for the percents it names."""
    low, high = value_bounds(chance)
    assert (high < threshold_percent) if flagged else (low >= threshold_percent), (chance, flagged)
    assert (low >= 50) == (shown_number(grade) >= mark), (grade, chance, mark)


lines = st.floats(min_value=0.05, max_value=0.95, allow_nan=False)
marks = st.floats(min_value=0.5, max_value=19.5, allow_nan=False)
grades = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)


@given(p=unit, q=unit, threshold=lines)
def test_a_shown_chance_stays_on_its_side_of_the_threshold_and_of_half(
    p: float, q: float, threshold: float
) -> None:
    """Within one percent of the value, never across 50 % nor the threshold, and never lower
    for a higher chance."""
    with APP.test_request_context(), force_locale("en"):
        text = chance_text(p, threshold)
    low, high = value_bounds(text)
    if 0.05 <= p <= 0.95:
        assert low == high
        assert abs(low - 100 * p) < 1 + 1e-9
    # Two lines with no whole percent between them cannot both hold: the threshold wins.
    between = math.ceil(round(100 * min(threshold, 0.5), 9)) < 100 * max(threshold, 0.5)
    if p < threshold:
        assert high < 100 * threshold, (p, threshold, text)
    else:
        assert low >= 100 * threshold, (p, threshold, text)
    if between or abs(threshold - 0.5) < 1e-12:
        assert (low >= 50) == (p >= 0.5), (p, threshold, text)
    a, b = sorted((p, q))
    assert sided(a, 2, (0.5, threshold)) <= sided(b, 2, (0.5, threshold))


@pytest.mark.parametrize("locale", ["en", "fr"])
@given(g=grades, a=grades, b=grades, mark=marks)
def test_a_shown_grade_stays_on_its_side_of_the_mark_and_in_its_range(
    locale: str, g: float, a: float, b: float, mark: float
) -> None:
    low, high = sorted((a, b))
    g = min(max(g, low), high)
    with APP.test_request_context(), force_locale(locale):
        shown = [shown_number(grade_text(v, mark, end)) for v, end in
                 ((g, None), (low, "low"), (high, "high"))]  # fmt: skip
    value, s_low, s_high = shown
    assert s_low <= value <= s_high, (g, low, high, shown)
    assert abs(value - g) < 0.1 + 1e-9
    assert (value >= mark) == (g >= mark), (g, mark, value)
    assert (s_low >= mark) == (low >= mark)
    assert (s_high >= mark) == (high >= mark)


@pytest.mark.parametrize(
    ("grade", "chance", "threshold", "shown"),
    [(9.957, 0.4961, 0.5, ("9.9", "49 %")),  # the demo's row, flagged: it read "10.0", "50 %"
     (10.04, 0.504, 0.5, ("10.0", "50 %")),
     (9.951, 0.4951, 0.5, ("9.9", "49 %")),
     (8.0, 0.3335, 0.333, ("8.0", "34 %")),  # not under 33.3 %: never "33 %"
     (8.0, 0.3329, 0.333, ("8.0", "33 %")),
     (8.0, 0.29, 0.29, ("8.0", "29 %")),  # 0.29 * 100 is 28.999999999999996
     (8.0, 0.0499, 0.05, ("8.0", "under 5 %"))],
)  # fmt: skip
def test_numbers_at_the_lines(
    grade: float, chance: float, threshold: float, shown: tuple[str, str]
) -> None:
    with APP.test_request_context(), force_locale("en"):
        assert (
            grade_text(grade, 10.0),
            chance_text(chance, threshold).replace("\xa0", " "),
        ) == shown
    check_shown_estimate(*shown, chance < threshold, 10.0, 100 * threshold)
