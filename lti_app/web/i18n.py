"""French and English through Flask-Babel; the locale follows the LTI launch.

Moodle sends the user's language in `launch_presentation.locale` (e.g. `fr`, `fr_ca`, `en`);
the launch stores it in the session details, so every page of that launch, and the scripts'
API calls, speak the same language. Without a launch (error pages, the new-window fallback
before a session) the browser's Accept-Language decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from babel import Locale
from babel.numbers import NumberPattern, parse_pattern
from flask import Flask, request
from flask_babel import Babel, format_date, format_datetime, get_locale, gettext, to_user_timezone

from lti_app.services.course_settings import stated
from lti_app.web.auth import N_, current

LANGUAGES = ("en", "fr")


MISSING = "\u2013"  # an en dash stands for a value that does not exist


def select_locale() -> str:
    ctx = current()
    if ctx is not None:
        raw = str(ctx.details.get("locale") or "").replace("-", "_").lower()
        lang = raw.split("_", 1)[0]
        if lang in LANGUAGES:
            return lang
    return request.accept_languages.best_match(LANGUAGES) or "en"


@lru_cache(maxsize=16)
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


def _locale() -> Locale:
    locale = get_locale()
    return locale if locale is not None else Locale.parse("en")


def _num(value: Any, digits: int = 1) -> str:
    """What Flask-Babel's `format_decimal` gives, with the parsed pattern kept: the dashboard
    formats thousands of numbers, and parsing the pattern and the locale on each call was half
    the cost of a call."""
    if value is None:
        return MISSING
    pattern = _pattern(f"#,##0.{'0' * digits}" if digits else "#,##0")
    return str(pattern.apply(float(value), _locale()))


def _mark(value: Any) -> str:
    """A mark as a teacher writes it: "10", "12,5" (French), "11.67"; two decimals at most."""
    if value is None:
        return MISSING
    return str(_pattern("#,##0.##").apply(float(value), _locale()))


def _signed(value: Any, digits: int = 1) -> str:
    """A change with its sign, in the locale's digits: "+6,9", "-4,3"."""
    if value is None:
        return MISSING
    zeros = "0" * digits
    pattern = f"+#,##0.{zeros};-#,##0.{zeros}" if digits else "+#,##0;-#,##0"
    return str(_pattern(pattern).apply(float(value), _locale()))


#: The words for the tool's access levels and Moodle's course roles (their short names, as a
#: roster sync stores them, and "learner"/"teacher" as Names and Roles gives them).
ROLE_WORDS = {
    "teacher": N_("teacher"),
    "editingteacher": N_("teacher"),
    "noneditingteacher": N_("non-editing teacher"),
    "learner": N_("learner"),
    "student": N_("student"),
    "manager": N_("manager"),
    "coursecreator": N_("course creator"),
    "guest": N_("guest"),
    "admin": N_("administrator"),
}


def role_name(role: Any) -> str:
    """A role as a word of the reader's language; an unknown role reads as Moodle named it."""
    words = ROLE_WORDS.get(str(role or ""))
    return str(gettext(words)) if words is not None else str(role or MISSING)


#: The teacher actions' words (issue #16): message templates, what Moodle answered per
#: recipient, and the follow-up statuses; stored as codes, shown in the reader's language.
TEMPLATE_WORDS = {
    "checkin": N_("check-in (how is it going?)"),
    "meeting": N_("invitation to meet"),
    "custom": N_("blank message"),
}
CONTACT_STATUS_WORDS = {
    "sent": N_("sent"),
    "refused": N_("refused by Moodle"),
    "unknown": N_("no answer from Moodle (not resent)"),
    "failed": N_("failed"),
    "listed": N_("written from the address list"),
}
FOLLOW_UP_STATUS_WORDS = {
    "contacted": N_("contacted"),
    "met": N_("met"),
    "no_action": N_("no action needed"),
    "flag_wrong": N_("flag was wrong"),
}


def coded_words(words: dict[str, str]) -> Any:
    def word(code: Any) -> str:
        found = words.get(str(code or ""))
        return str(gettext(found)) if found is not None else str(code or MISSING)

    return word


def _placeholder(name: Any) -> str:
    """A placeholder as a teacher writes it in a message: {first_name}."""
    return "{" + str(name) + "}"


def _pct(value: Any) -> str:
    if value is None:
        return MISSING
    return str(_pattern("#,##0 %").apply(float(value), _locale()))


#: A few hundred past students cannot support a chance below 5 % or above 95 %: no page says
#: "0 %" or "100 %" (issue #14); below and above, the words say "under 5 %" / "over 95 %".
CHANCE_FLOOR, CHANCE_CEIL = 0.05, 0.95


Rounding = Literal["nearest", "down", "up"]
#: A line a shown number is kept on its side of: the exact value the rule compares with, or
#: (exact, as the page states it) when the page states it rounded (a pass mark of 11.704 is
#: stated "11.7": a grade of 11.69, under it, must read "11.6", not "11.7").
Line = float | tuple[float, float]


def _line(line: Line) -> tuple[float, float]:
    return (float(line[0]), float(line[1])) if isinstance(line, tuple) else (line, line)


def sided(
    value: float, digits: int, lines: Iterable[Line | None], how: Rounding = "nearest"
) -> float:
    """`value` rounded to `digits` decimals (to the nearest, or down or up for a range's ends),
    then kept on the same side of each of `lines` as the value itself: a value at or above a
    line is shown at or above it as stated, a value below it below.

    Why: a page puts a rounded number beside a rule that reads the exact one. A grade of 9.957
    shown "10.0" beside a pass mark of 10 and a chance under 50 %, or a chance of 0.4961 shown
    "50 %" on a row flagged "at risk: pass chance under 50 %", contradicts itself; kept on its
    side they read "9.9" and "49 %". The result stays between the value's rounding down and up
    (one step further where the line is stated rounded), so a range rounded outwards still
    holds it, and it never decreases as the value grows (each line's correction is monotone).
    Two lines with no step between them cannot both hold (`holds` tells; the later line wins):
    `_chance` then shows one more decimal."""
    scale: int = 10**digits
    exact = round(float(value) * scale, 9)  # 0.28 * 100 is 28.000000000000004
    shown = {"nearest": round(exact), "down": math.floor(exact), "up": math.ceil(exact)}[how]
    for line in lines:
        if line is None:
            continue
        rule, said = _line(line)
        at = round(said * scale, 9)
        # The side is the rule's own comparison, on the unscaled numbers (0.29 * 100 is
        # 28.999999999999996, yet 0.29 is not under a threshold of 0.29).
        if float(value) < rule and shown >= at:
            shown = math.ceil(at) - 1  # the last step below the line
        elif float(value) >= rule and shown < at:
            shown = math.ceil(at)  # the first step at or above it
    return shown / scale


def holds(value: float, shown: float, lines: Iterable[Line | None]) -> bool:
    """Whether `shown` reads on `value`'s side of every line, as stated."""
    return all(
        (float(value) < _line(line)[0]) == (shown < _line(line)[1])
        for line in lines
        if line is not None
    )


def _share(value: float, digits: int) -> str:
    """A share as a percent with `digits` - 2 decimals ("49 %", "49,7 %")."""
    pattern = "#,##0 %" if digits <= 2 else f"#,##0.{'0' * (digits - 2)} %"
    return str(_pattern(pattern).apply(value, _locale()))


def chance_lines(threshold: float | None) -> tuple[Line | None, ...]:
    """50 % (where the grade beside a chance reaches the pass mark) and the course's at-risk
    threshold (stated exactly: `course_settings.risk_threshold_of` keeps two decimals of a
    percent), the threshold last: the flag beside the chance reads it."""
    return (0.5, threshold)


def sided_finest(
    value: float, digits: int, lines: Sequence[Line | None], how: Rounding = "nearest"
) -> tuple[float, int]:
    """`sided` to `digits` decimals, or one or two more where no step of that size lies on the
    value's side of every line (a chance of 0.497 between a threshold of 49.5 % and 50 %
    reads "49.7 %"): the number and the decimals it needs."""
    for places in (digits, digits + 1, digits + 2):
        shown = sided(value, places, lines, how)
        if holds(value, shown, lines):
            break
    return shown, places


def _sided_share(p: float, threshold: float | None, how: Rounding) -> tuple[float, int]:
    """A chance rounded on its side of the lines: a whole percent where one is (`sided_finest`)."""
    return sided_finest(p, 2, chance_lines(threshold), how)


def _chance(value: Any, threshold: float | None = None) -> str:
    """A pass chance as shown everywhere: a whole percent between 5 % and 95 %, else words.

    The percent stays on the value's side of 50 % (the grade beside it is at or above the pass
    mark exactly when the chance is at least 50 %) and of the course's at-risk `threshold`
    (the row is flagged exactly when the chance is under it): see `sided`."""
    if value is None:
        return MISSING
    p = float(value)
    if p < CHANCE_FLOOR:
        return str(gettext("under %(p)s", p=_pct(CHANCE_FLOOR)))
    if p > CHANCE_CEIL:
        return str(gettext("over %(p)s", p=_pct(CHANCE_CEIL)))
    return _share(*_sided_share(p, threshold, "nearest"))


def _threshold(value: Any) -> str:
    """The at-risk threshold as the rule beside the chances states it, exactly ("33,3 %" when
    a teacher set 33.3): rounded, a flagged "33 %" would read as not under it."""
    if value is None:
        return MISSING
    return str(_pattern("#,##0.## %").apply(float(value), _locale()))


def _grade(value: Any, mark: float | None = None, end: str | None = None) -> str:
    """A grade to one decimal, kept on its side of the pass `mark` the estimates were made
    for, as the page states it (`|mark`, two decimals): a chance of at least 50 % goes with a
    grade at or above it, so 9.957 against 10 reads "9.9", not "10.0". `end` "low"/"high": a
    range's end, rounded outwards so that the range holds the grade shown beside it."""
    if value is None:
        return MISSING
    return _num(sided(float(value), 1, mark_lines(mark), end_rounding(end)))


def mark_lines(mark: float | None) -> tuple[Line | None, ...]:
    """The pass mark as a line: exact for the side, as `|mark` states it (two decimals)."""
    return (None if mark is None else (float(mark), stated(float(mark), 2)),)


def end_rounding(end: str | None) -> Rounding:
    """A range's low end rounds down, its high end up (the range holds its value), a value to
    the nearest."""
    return "down" if end == "low" else "up" if end == "high" else "nearest"


def _chance_range(bounds: Any, threshold: float | None = None) -> str:
    """A chance's range, rounded outwards so that it always contains the shown value, never
    "± x" across a bound: "between 40 % and 70 %", "up to 28 %", "at least 60 %". Its ends are
    kept on their side of the same lines as the chance (`_chance`), so the range holds the
    chance as shown, even where the chance moved to stay on its side."""
    if not bounds or bounds[0] is None or bounds[1] is None:
        return MISSING
    low, low_digits = _sided_share(float(bounds[0]), threshold, "down")
    high, high_digits = _sided_share(float(bounds[1]), threshold, "up")
    if low < CHANCE_FLOOR and high > CHANCE_CEIL:
        return str(gettext("anywhere from %(low)s to %(high)s", low=_chance(0), high=_chance(1)))
    if low < CHANCE_FLOOR:
        return str(gettext("up to %(p)s", p=_share(max(high, CHANCE_FLOOR), high_digits)))
    if high > CHANCE_CEIL:
        return str(gettext("at least %(p)s", p=_share(min(low, CHANCE_CEIL), low_digits)))
    return str(
        gettext(
            "between %(low)s and %(high)s",
            low=_share(low, low_digits),
            high=_share(high, high_digits),
        )
    )


chance_text = _chance
chance_range_text = _chance_range
grade_text = _grade
number_text = _num
percent_text = _pct


def _zone(moment: datetime) -> str:
    """The moment's offset from UTC in the site's zone, as people read it: "UTC+1", "UTC+5:30",
    "UTC" (a zone name such as "CET" is neither translated nor always known)."""
    offset = to_user_timezone(moment).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    hours, rest = divmod(minutes, 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _when(value: Any) -> str:
    """A moment (stored in UTC; a naive one is UTC) in the site's time zone (`moodle.timezone`),
    with its offset, since a reader may be elsewhere: "3 déc. 2026, 18:24:14 (UTC+1)"."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{format_datetime(value, format='medium')} ({_zone(value)})"


def _day(value: Any) -> str:
    """A date alone ("22 sept. 2025"), in the site's time zone: a course's start or end."""
    if value is None:
        return MISSING
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(format_date(value, format="medium"))


def install(app: Flask) -> None:
    settings = app.extensions.get("arche_predict", {}).get("settings")
    Babel(
        app,
        locale_selector=select_locale,
        default_translation_directories="translations",
        # The dates on every page are in the site's zone (Moodle's `moodle.timezone`).
        default_timezone=settings.moodle.timezone if settings is not None else "UTC",
    )
    app.jinja_env.globals.update(current_locale=lambda: str(get_locale() or "en"))
    app.jinja_env.filters.update(
        num=_num,
        mark=_mark,
        pct=_pct,
        signed=_signed,
        chance=_chance,
        chance_range=_chance_range,
        grade=_grade,
        threshold=_threshold,
        when=_when,
        day=_day,
        role_name=role_name,
        template_name=coded_words(TEMPLATE_WORDS),
        contact_status=coded_words(CONTACT_STATUS_WORDS),
        follow_up_status=coded_words(FOLLOW_UP_STATUS_WORDS),
        placeholder=_placeholder,
    )
