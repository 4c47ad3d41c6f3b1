"""English left on a French page: the check the server-side and the browser tests share.

A page's visible text (tags, scripts, styles and `<code>`/`<pre>` technical tokens removed) and
its charts' visible words (axis and legend titles, category labels) are searched for English
words and phrases that no French sentence has, once the names a page legitimately shows
(people, courses, the product, URLs, ids) are taken out. French number formatting is checked
too: no decimal point between digits, no "il y a 1 jours".
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any

#: Words and phrases that only English has (checked as whole words, case-insensitively).
ENGLISH = (
    "the",
    "of",
    "and",
    "is",
    "are",
    "this",
    "that",
    "with",
    "for",
    "from",
    "your",
    "you",
    "to",
    "no",
    "not",
    "has",
    "have",
    "student",
    "students",
    "learner",
    "learners",
    "teacher",
    "teachers",
    "editingteacher",
    "chance of",
    "forbidden",
    "not found",
    "week",
    "weeks",
    "days",
    "ago",
    "today",
    "members",
    "participants of",
    "refresh",
    "back",
    "launch",
    "course",
    "assessment",
    "forum_read",
    "forum_write",
    "content",
    "submission",
    "never",
    "succeeded",
    "failed",
    "running",
    "passed",
    "withheld",
    "feature",
    "median",
    "activity type",
    "shuffled",
    "AUC",
    "ECE",
    "am",
    "pm",
)
_WORDS = "|".join(re.escape(w) for w in ENGLISH)
_ENGLISH = re.compile(r"(?<![\w-])(" + _WORDS + r")(?![\w-])", re.I)
# "2.5" in French text; a version or a date ("2026-12-03", "5.1") is removed with the names.
_DECIMAL_POINT = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")
_PLURAL = re.compile(
    r"(?<![\w,.])(?:1|un|une)\s+(jours|semaines|étudiants|points|membres|événements)\b"
)
# Technical tokens a page may show as they are: URLs, e-mail addresses, paths, ids with digits.
_TECHNICAL = (
    re.compile(r"https?://\S+"),
    re.compile(r"\S+@\S+"),
    re.compile(r"(?<!\w)/[\w./-]+"),
    re.compile(r"\b[\w.-]*\d[\w.-]*-[\w.-]+\b"),  # model ids such as 5-20261203172414-716f55-cla
    re.compile(r"\barche-predict(?: [a-z-]+)*"),  # the product, and its commands
)

#: Said on purpose on a French page (cross-language words, tool and service names).
ALLOWED = (
    "Moodle",
    "LTI 1.3",
    "LTI",
    "Names and Roles",
    "Excel",
    "CSV",
    "UTC",
    "R²",
    "Brier",
    "MAE",
    "JSON",
)


class _Text(HTMLParser):
    """Text nodes and the attributes people read; not scripts, code, nor an element marked
    `data-technical` (the model card's "Technical details", where "AUC" may stay)."""

    SKIP = frozenset({"script", "style", "code", "pre", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.specs: list[str] = []
        self._skip = 0
        self._technical: tuple[str, int] | None = None  # (tag, depth) while inside one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._technical is not None:
            if tag == self._technical[0]:
                self._technical = (tag, self._technical[1] + 1)
            return
        if any(name == "data-technical" for name, _ in attrs):
            self._technical = (tag, 1)
            return
        if tag in self.SKIP:
            self._skip += 1
        for name, value in attrs:
            if name == "data-vega-spec" and value:
                self.specs.append(value)
            elif name in ("aria-label", "placeholder", "title") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._technical is not None:
            if tag == self._technical[0]:
                depth = self._technical[1] - 1
                self._technical = (tag, depth) if depth else None
            return
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and self._technical is None:
            self.parts.append(data)


def chart_words(spec: Mapping[str, Any]) -> list[str]:
    """What a chart shows in words: its titles and its categories' labels."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("title", "category", "series") and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec)
    return out


def visible_text(page: str) -> str:
    """The page's visible text, with its charts' words, as one string (one part per line)."""
    parser = _Text()
    parser.feed(page)
    parts = list(parser.parts)
    for raw in parser.specs:
        parts.extend(chart_words(json.loads(html.unescape(raw))))
    return "\n".join(" ".join(p.split()) for p in parts if p.strip())


def english_in(text: str, names: Iterable[str] = (), allowed: Iterable[str] = ()) -> list[str]:
    """English words, decimal points and plural errors in French text, each with its context;
    `names` (people, courses) and `allowed` are removed first, longest first."""
    for token in sorted({*names, *ALLOWED, *allowed}, key=len, reverse=True):
        if token:
            text = text.replace(token, " ")
    for pattern in _TECHNICAL:
        text = pattern.sub(" ", text)
    found: list[str] = []
    for line in text.splitlines():
        for pattern in (_ENGLISH, _DECIMAL_POINT, _PLURAL):
            for m in pattern.finditer(line):
                start, end = max(0, m.start() - 30), m.end() + 30
                found.append(f"{m.group(0)!r} in {line[start:end].strip()!r}")
    return found
