"""Contacting students from the at-risk list (issue #16, item 1): templates, per-student
previews, sending through Moodle messaging, and the contact log.

Moodle sends a web-service message as the token's user (the tool's service account), not as the
teacher, so every message carries the teacher's name in its text (a closing line the teacher
cannot remove). Messages go one per call and are never retried (`moodle_client.actions`): the
row of each recipient is written as `unknown` *before* the call and updated after, and the web
route commits between recipients, so a crash mid-batch leaves "unknown" (maybe delivered),
never a second message. A batch id from the compose form makes a double submit show the first
send's results instead of sending again.

Services take a session and never commit (DESIGN.md); `send_one` is the unit the caller
commits around.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.models import Contact, Course, Enrolment, MoodleSite, Person, Prediction
from lti_app.services import audit
from lti_app.services.insights import active_models, is_at_risk, latest_predictions
from moodle_client.actions import send_message
from moodle_client.client import MoodleClient
from moodle_client.errors import AccessDeniedError, MissingCapabilityError, MoodleError

__all__ = [
    "PLACEHOLDERS",
    "PLACEHOLDER_NAMES",
    "TEMPLATES",
    "ContactError",
    "Recipient",
    "batch_results",
    "contact_log",
    "last_contacts",
    "messaging_problem",
    "new_batch_id",
    "note_messaging_refusal",
    "placeholder_names",
    "recipients",
    "record_listed",
    "render",
    "send_one",
    "student_labels",
    "template_text",
]

#: The placeholders a message may use, with what each stands for (shown beside the editor).
PLACEHOLDERS = ("first_name", "full_name", "course", "teacher")

#: Their names in each message language, so a French message reads {prenom}, not {first_name};
#: every name of every language is accepted in any message (a teacher may mix them).
PLACEHOLDER_NAMES: dict[str, dict[str, str]] = {
    "en": {p: p for p in PLACEHOLDERS},
    "fr": {
        "first_name": "prenom",
        "full_name": "nom_complet",
        "course": "cours",
        "teacher": "enseignant",
    },
}
#: Accepted spellings -> placeholder (French with its accent too).
_ALIASES: dict[str, str] = {
    **{name: p for names in PLACEHOLDER_NAMES.values() for p, name in names.items()},
    "prénom": "first_name",
}


def placeholder_names(locale: str) -> tuple[str, ...]:
    """The placeholders as written in a message of this language."""
    names = PLACEHOLDER_NAMES.get(locale[:2], PLACEHOLDER_NAMES["en"])
    return tuple(names[p] for p in PLACEHOLDERS)


#: The message templates, by key and language. The teacher edits the text freely before
#: sending; `custom` starts almost blank. Wording: an offer of help, never a verdict (the
#: student is not told a model flagged them).
TEMPLATES: dict[str, dict[str, str]] = {
    "checkin": {
        "en": (
            "Hello {first_name},\n\n"
            "I am checking in about {course}. Your recent activity in the course suggests you "
            "may be finding it hard to keep up. If something is getting in your way, reply to "
            "this message or come and see me: we can find a way forward together.\n\n"
            "{teacher}"
        ),
        "fr": (
            "Bonjour {prenom},\n\n"
            "Je prends de vos nouvelles à propos du cours {cours}. Votre activité récente "
            "laisse penser que vous avez peut-être du mal à suivre. Si quelque chose vous en "
            "empêche, répondez à ce message ou venez me voir : nous trouverons ensemble comment "
            "avancer.\n\n"
            "{enseignant}"
        ),
    },
    "meeting": {
        "en": (
            "Hello {first_name},\n\n"
            "I would like to meet you briefly about your work in {course}, to see how I can "
            "help you succeed. Could you reply with a time that suits you this week or next?"
            "\n\n{teacher}"
        ),
        "fr": (
            "Bonjour {prenom},\n\n"
            "Je souhaiterais vous rencontrer brièvement au sujet de votre travail dans le cours "
            "{cours}, pour voir comment vous aider à réussir. Pouvez-vous me répondre en "
            "m'indiquant un moment qui vous convient cette semaine ou la suivante ?\n\n"
            "{enseignant}"
        ),
    },
    "custom": {
        "en": "Hello {first_name},\n\n\n\n{teacher}",
        "fr": "Bonjour {prenom},\n\n\n\n{enseignant}",
    },
}

#: The closing line added to every message sent through Moodle (the sender Moodle shows is the
#: tool's service account): who wrote it, in the template's language.
SIGNATURE = {
    "en": "— Sent by {teacher} (teacher of {course}) through arche-predict.",
    "fr": "— Envoyé par {teacher} (enseignant·e du cours {course}) via arche-predict.",
}
#: When the message already ends with the teacher's name (the templates sign with {teacher}),
#: the closing line does not repeat it.
SIGNATURE_SIGNED = {
    "en": "— Sent through arche-predict ({course}).",
    "fr": "— Envoyé via arche-predict (cours {course}).",
}

MAX_LENGTH = 4000


class ContactError(ValueError):
    """A message that cannot be sent as written: the reason is for the teacher, in words."""

    def __init__(self, code: str, **values: str) -> None:
        self.code = code
        self.values = values
        super().__init__(code)


@dataclass(frozen=True)
class Recipient:
    """A student a teacher picked, with what the page shows beside their name."""

    person: Person
    prediction: Prediction | None
    at_risk: bool | None
    pass_probability: float | None

    @property
    def first_name(self) -> str:
        """Moodle's full name's first word: the roster keeps the full name only."""
        return (self.person.fullname.split() or [""])[0]

    @property
    def can_message(self) -> bool:
        return self.person.moodle_user_id is not None


def new_batch_id() -> str:
    return secrets.token_hex(8)


def template_text(key: str, locale: str) -> str:
    by_lang = TEMPLATES.get(key) or TEMPLATES["custom"]
    return by_lang.get(locale[:2], by_lang["en"])


def check_text(text: str) -> None:
    """Refuse what `render` could not fill: an unknown placeholder or an unclosed brace."""
    if not text.strip():
        raise ContactError("empty")
    if len(text) > MAX_LENGTH:
        raise ContactError("too_long", limit=str(MAX_LENGTH))
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ContactError("braces") from exc
    for field in fields:
        if field not in _ALIASES:
            raise ContactError("placeholder", name=field or "{}")


def render(text: str, recipient: Recipient, course: Course, teacher: str, locale: str) -> str:
    """The message one student gets, as plain text: placeholders filled, the signature added."""
    check_text(text)
    values = {
        "first_name": recipient.first_name,
        "full_name": recipient.person.fullname,
        "course": course.fullname or course.shortname,
        "teacher": teacher,
    }
    body = text.format_map({alias: values[p] for alias, p in _ALIASES.items()}).strip()
    closings = SIGNATURE_SIGNED if teacher and teacher in body else SIGNATURE
    signature = closings.get(locale[:2], closings["en"]).format_map(values)
    return f"{body}\n\n{signature}"


def as_html(text: str) -> str:
    """Moodle's HTML message format (textformat 1) for a plain-text message."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>".join(str(escape(line)) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def recipients(
    session: Session, course: Course, person_ids: Iterable[int], threshold: float
) -> list[Recipient]:
    """The picked students who are students of this course in its shown scoring (anyone else in
    the form is dropped: a teacher cannot message a stranger through the tool), by name."""
    wanted = set(person_ids)
    models = active_models(session, course.id)
    clf_ok = bool(models.get("classification") and models["classification"].gate_passed)
    out: list[Recipient] = []
    for person, prediction in latest_predictions(session, course.id):
        if person.id not in wanted:
            continue
        chance = prediction.pass_probability if clf_ok else None
        out.append(Recipient(person, prediction, is_at_risk(chance, threshold), chance))
    return out


def messaging_problem(site: MoodleSite) -> str | None:
    """Why Moodle messaging cannot be used for this site, or None: no token (a CSV-only site),
    or a refusal already seen (`unavailable_features["messaging"]`)."""
    if not site.ws_token_encrypted:
        return "no_token"
    if (site.unavailable_features or {}).get("messaging"):
        return "unavailable"
    return None


def mark_unavailable(site: MoodleSite, feature: str, explanation: str) -> None:
    """Remember that the site's token cannot do `feature`, with the words for the page."""
    site.unavailable_features = {**(site.unavailable_features or {}), feature: explanation}


def mark_available(site: MoodleSite, feature: str) -> None:
    if site.unavailable_features and feature in site.unavailable_features:
        site.unavailable_features = {
            k: v for k, v in site.unavailable_features.items() if k != feature
        }


def note_messaging_refusal(site: MoodleSite, exc: MoodleError) -> None:
    """A refusal of the whole service (a missing capability, messaging disabled on the site)
    turns messaging off for the site with Moodle's explanation; a per-call failure does not."""
    if isinstance(exc, MissingCapabilityError | AccessDeniedError) or exc.errorcode == "disabled":
        mark_unavailable(site, "messaging", exc.explanation or exc.message)


def already_sent(session: Session, batch: str, person_id: int) -> Contact | None:
    return session.scalar(
        select(Contact).where(Contact.batch == batch, Contact.person_id == person_id)
    )


def _contact_row(
    course: Course,
    sender: Person,
    recipient: Recipient,
    batch: str,
    template: str,
    message: str,
    channel: str,
    status: str,
) -> Contact:
    """One recipient's contact as logged, with the chance the page showed when it was made."""
    return Contact(
        course_id=course.id,
        person_id=recipient.person.id,
        sent_by=sender.id,
        batch=batch,
        channel=channel,
        template=template if template in TEMPLATES else "custom",
        text=message,
        status=status,
        prediction_id=recipient.prediction.id if recipient.prediction else None,
        pass_probability=recipient.pass_probability,
    )


def send_one(
    session: Session,
    client: MoodleClient,
    *,
    course: Course,
    site: MoodleSite,
    sender: Person,
    recipient: Recipient,
    batch: str,
    template: str,
    text: str,
    locale: str,
    service_error: MoodleError | None = None,
) -> tuple[Contact, MoodleError | None]:
    """Send one student their message, once: a row already in this batch is returned as it is.

    Returns the contact row and, when Moodle refused the whole service (messaging disabled, a
    missing capability), that error, so the caller records every remaining recipient as
    `failed` without calling Moodle again (pass it back as `service_error`).
    """
    existing = already_sent(session, batch, recipient.person.id)
    if existing is not None:
        return existing, service_error
    message = render(text, recipient, course, sender.fullname, locale)
    row = _contact_row(course, sender, recipient, batch, template, message, "message", "unknown")
    session.add(row)
    if service_error is not None:
        row.status, row.reason = "failed", service_error.explanation or service_error.message
        return row, service_error
    if recipient.person.moodle_user_id is None:
        row.status, row.reason = "failed", "no Moodle account known for this student"
        return row, None
    # Written as "unknown" before the call: if the process dies during it, that is the truth.
    session.flush()
    try:
        outcome = send_message(
            client,
            recipient.person.moodle_user_id,
            as_html(message),
            clientmsgid=f"{batch}-{recipient.person.id}",
        )
    except MoodleError as exc:
        row.status, row.reason = "failed", exc.explanation or exc.message
        note_messaging_refusal(site, exc)
        return row, exc
    row.status, row.moodle_msgid = outcome.status, outcome.msgid
    row.reason = outcome.reason or None
    if outcome.status == "sent":
        mark_available(site, "messaging")
    return row, None


def record_listed(
    session: Session,
    *,
    course: Course,
    sender: Person,
    recipients_: Sequence[Recipient],
    batch: str,
    template: str,
    text: str,
    locale: str,
) -> list[Contact]:
    """The teacher wrote to these students themselves (messaging unavailable: they copied the
    addresses): logged as `listed` contacts, the text as the preview showed it."""
    rows = []
    for r in recipients_:
        existing = already_sent(session, batch, r.person.id)
        if existing is not None:
            rows.append(existing)
            continue
        message = render(text, r, course, sender.fullname, locale)
        row = _contact_row(course, sender, r, batch, template, message, "address_list", "listed")
        session.add(row)
        rows.append(row)
    audit.record(
        session,
        "contact.listed",
        "accepted",
        None,
        person_id=sender.id,
        course_id=course.id,
        details={"batch": batch, "recipients": len(rows)},
    )
    return rows


def batch_results(session: Session, course: Course, batch: str) -> list[tuple[Contact, Person]]:
    rows = session.execute(
        select(Contact, Person)
        .join(Person, Person.id == Contact.person_id)
        .where(Contact.course_id == course.id, Contact.batch == batch)
        .order_by(Person.fullname, Contact.id)
    ).all()
    return [(c, p) for c, p in rows]


def student_labels(session: Session, course_id: int) -> dict[int, str]:
    """Each person of the course by the name a teacher reads, made unique: a name two people
    share gets their Moodle user id ("Paul Martin (#219)"), as the grades chart does, so a
    teacher can tell which of them a message reached."""
    rows = session.execute(
        select(Person.id, Person.fullname, Person.moodle_user_id)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .where(Enrolment.course_id == course_id)
        .distinct()
    ).all()
    counts: dict[str, int] = {}
    for _, name, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return {
        pid: name if counts[name] == 1 else f"{name} (#{uid or pid})" for pid, name, uid in rows
    }


def contact_log(
    session: Session, course: Course, person_id: int | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Every contact of the course (or of one student), newest send first and by name within
    a send: by whom, to whom, when, how, which template, Moodle's answer."""
    sender = Person.__table__.alias("sender")
    query = (
        select(Contact, Person.fullname, sender.c.fullname)
        .join(Person, Person.id == Contact.person_id)
        .outerjoin(sender, sender.c.id == Contact.sent_by)
        .where(Contact.course_id == course.id)
        .order_by(Contact.at.desc(), Contact.id.desc())
        .limit(limit)
    )
    if person_id is not None:
        query = query.where(Contact.person_id == person_id)
    labels = student_labels(session, course.id)
    rows = [
        {"contact": c, "student": labels.get(c.person_id, student), "sender": by or ""}
        for c, student, by in session.execute(query).all()
    ]
    # A send writes its rows one by one: ordered by time alone they read in reverse names.
    newest: dict[str, datetime] = {}
    for r in rows:
        c = r["contact"]
        newest[c.batch] = max(newest.get(c.batch, c.at), c.at)
    rows.sort(key=lambda r: r["student"].lower())
    rows.sort(key=lambda r: newest[r["contact"].batch], reverse=True)
    return rows


def last_contacts(session: Session, course_id: int) -> Mapping[int, datetime]:
    """Each student's latest contact that reached them or was written by the teacher (sent or
    listed): what "not yet contacted" filters on."""
    rows = session.execute(
        select(Contact.person_id, func.max(Contact.at))
        .where(Contact.course_id == course_id, Contact.status.in_(("sent", "listed")))
        .group_by(Contact.person_id)
    ).all()
    return dict(rows)
