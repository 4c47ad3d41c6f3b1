"""How a pass chance and its range are worded (issue #14, item 2): never "0 %" or "100 %", a
range always containing the value shown beside it, never "± x" across a bound. Property tests
over every value and range, in English and French.

And how a shown number sits against the rules beside it: a chance shown under the at-risk
threshold exactly when the row is flagged, at least 50 % exactly when the grade shown is at or
above the pass mark, the grade inside its range as shown (`i18n.sided`)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from hypothesis import given
from hypothesis import strategies as st

from lti_app.services.course_settings import stated
from lti_app.web.i18n import chance_range_text, chance_text, grade_text, sided

APP = Flask(__name__)
Babel(APP, default_translation_directories="translations")
APP.root_path = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "lti_app")

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def numbers_in(text: str) -> list[float]:
    """The numbers of a worded chance, in percents ("49,7 %" in French is 49.7)."""
    return [float(n.replace(",", ".")) for n in re.findall(r"\d+(?:[.,]\d+)?", text)]


#: What "under 5 %" and "over 95 %" stand for: strictly under and over.
BELOW = 1e-9


def value_bounds(text: str) -> tuple[float, float]:
    """The percents a worded value stands for: "under 5 %" is [0, 5), "42 %" is 42."""
    [n] = numbers_in(text)
    if text.startswith(("under", "moins")):
        return 0, n - BELOW
    if text.startswith(("over", "plus")):
        return n + BELOW, 100
    return n, n


def range_bounds(text: str) -> tuple[float, float]:
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
    exactly when the grade shown is at or above the pass mark (`mark`, as stated: two
    decimals). A worded chance ("under 5 %", "over 95 %") stands for the percents it names."""
    low, high = value_bounds(chance)
    assert (high < threshold_percent) if flagged else (low >= threshold_percent), (chance, flagged)
    assert (low >= 50) == (shown_number(grade) >= stated(mark, 2)), (grade, chance, mark)


#: Thresholds as `risk_threshold_of` gives them: a hundredth of a percent, 5 % to 95 %.
lines = st.integers(min_value=500, max_value=9500).map(lambda n: n / 10000)
marks = st.floats(min_value=0.5, max_value=19.5, allow_nan=False)
grades = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)


@pytest.mark.parametrize("locale", ["en", "fr"])
@given(p=unit, q=unit, a=unit, b=unit, threshold=lines)
def test_a_shown_chance_stays_on_its_side_of_the_threshold_and_of_half(
    locale: str, p: float, q: float, a: float, b: float, threshold: float
) -> None:
    """Never across 50 % nor the threshold, within one step of the value (a whole percent, or
    a tenth where no whole percent lies between the two lines), never lower for a higher
    chance, and inside its range as shown."""
    low, high = min(a, b, p), max(a, b, p)
    with APP.test_request_context(), force_locale(locale):
        text, span = chance_text(p, threshold), chance_range_text([low, high], threshold)
    v_low, v_high = value_bounds(text)
    if 0.05 <= p <= 0.95:
        assert v_low == v_high
        step = 1 if v_low == round(v_low) else 0.1
        assert abs(v_low - 100 * p) <= step + 1e-9, (p, text)
    assert (v_high < 100 * threshold) == (p < threshold), (p, threshold, text)
    assert (v_low >= 100 * threshold) == (p >= threshold), (p, threshold, text)
    assert (v_low >= 50) == (p >= 0.5), (p, threshold, text)
    r_low, r_high = range_bounds(span)
    assert max(v_low, r_low) <= min(v_high, r_high), (p, low, high, text, span)
    x, y = sorted((p, q))
    assert sided(x, 2, (0.5, threshold)) <= sided(y, 2, (0.5, threshold))


@pytest.mark.parametrize("locale", ["en", "fr"])
@given(g=grades, a=grades, b=grades, mark=marks)
def test_a_shown_grade_stays_on_its_side_of_the_mark_and_in_its_range(
    locale: str, g: float, a: float, b: float, mark: float
) -> None:
    """On the grade's side of the pass mark as the page states it (two decimals: `|mark`),
    within a step of the grade (and of the mark's rounding), inside its range as shown."""
    low, high = sorted((a, b))
    g = min(max(g, low), high)
    line = stated(mark, 2)
    with APP.test_request_context(), force_locale(locale):
        shown = [shown_number(grade_text(v, mark, end)) for v, end in
                 ((g, None), (low, "low"), (high, "high"))]  # fmt: skip
    value, s_low, s_high = shown
    assert s_low <= value <= s_high, (g, low, high, shown)
    assert abs(value - g) < 0.1 + abs(line - mark) + 1e-9
    assert (value >= line) == (g >= mark), (g, mark, value)
    assert (s_low >= line) == (low >= mark)
    assert (s_high >= line) == (high >= mark)


@pytest.mark.parametrize(
    ("grade", "chance", "threshold", "shown"),
    [(9.957, 0.4961, 0.5, ("9.9", "49 %")),  # the demo's row, flagged: it read "10.0", "50 %"
     (10.04, 0.504, 0.5, ("10.0", "50 %")),
     (9.951, 0.4951, 0.5, ("9.9", "49 %")),
     (8.0, 0.3335, 0.333, ("8.0", "34 %")),  # not under 33.3 %: never "33 %"
     (8.0, 0.3329, 0.333, ("8.0", "33 %")),
     (8.0, 0.29, 0.29, ("8.0", "29 %")),  # 0.29 * 100 is 28.999999999999996
     (8.0, 0.0499, 0.05, ("8.0", "under 5 %")),
     (9.9, 0.497, 0.495, ("9.9", "49.7 %")),  # no whole percent in [49.5 %, 50 %)
     (9.9, 0.4949, 0.495, ("9.9", "49 %"))],
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


@pytest.mark.parametrize(
    ("grade", "mark", "shown"),
    [(11.69, 11.704, "11.6"),  # the mark reads "11.7": a grade under it must read under it
     (11.702, 11.704, "11.6"),
     (11.71, 11.704, "11.7"),  # at or above 11.704, and at or above "11.7" as stated
     (16.665, 50 / 60 * 20, "16.6"),  # a Moodle mark of 50/60, stated "16.67"
     (16.668, 50 / 60 * 20, "16.7")],
)  # fmt: skip
def test_grades_at_a_mark_stated_rounded(grade: float, mark: float, shown: str) -> None:
    with APP.test_request_context(), force_locale("en"):
        assert grade_text(grade, mark) == shown
