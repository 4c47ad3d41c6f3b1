"""Telling a teacher what changed (issue #16, item 4): the students who became at risk since
their last visit to the dashboard, and a weekly digest through Moodle messaging (off unless the
teacher turns it on for the course).

"Became at risk" compares the shown scoring with the newest scoring made before the teacher's
previous visit: at risk now, and then not at risk or not scored. Only predictions whose pass
chance was shown (a classification model that passed its gate) count on either side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.models import (
    Course,
    CourseVisit,
    DigestSubscription,
    ModelVersion,
    MoodleSite,
    Person,
    Prediction,
)
from lti_app.services.contacts import mark_available, note_messaging_refusal
from lti_app.services.insights import active_models, is_at_risk, latest_as_of
from lti_app.services.shown_scoring import of_active_models
from moodle_client.actions import send_message
from moodle_client.client import MoodleClient
from moodle_client.errors import MoodleError

__all__ = [
    "DIGEST_EVERY",
    "DigestOutcome",
    "at_risk_ids",
    "became_at_risk",
    "digest_text",
    "due_subscriptions",
    "record_visit",
    "send_digest",
    "set_digest",
    "subscription",
]

#: A visit this long after the last one starts a new "since your last visit".
NEW_VISIT_AFTER = timedelta(hours=1)
#: A digest is due this long after the last one (a little under a week: the nightly job's time
#: moves by minutes from night to night).
DIGEST_EVERY = timedelta(days=7) - timedelta(hours=2)


def record_visit(
    session: Session, course_id: int, person_id: int, now: datetime
) -> datetime | None:
    """Note a teacher's visit; returns the previous visit's time ("since your last visit"), or
    None on a first visit."""
    visit = session.get(CourseVisit, (course_id, person_id))
    if visit is None:
        session.add(CourseVisit(course_id=course_id, person_id=person_id, seen_at=now))
        session.flush()
        return None
    if now - visit.seen_at >= NEW_VISIT_AFTER:
        visit.before_at, visit.seen_at = visit.seen_at, now
    return visit.before_at


def at_risk_ids(session: Session, course: Course, threshold: float) -> set[int]:
    """The students at risk in the shown scoring (the dashboard's table), read as ids and
    chances only: the dashboard asks on every visit, and the full rows (features, factors)
    are most of a 500-student scoring's bytes."""
    clf = active_models(session, course.id).get("classification")
    as_of = latest_as_of(session, course.id)
    if clf is None or not clf.gate_passed or as_of is None:
        return set()
    rows = session.execute(
        select(Prediction.person_id, Prediction.pass_probability).where(
            *of_active_models(course.id), Prediction.as_of == as_of
        )
    ).all()
    return {pid for pid, chance in rows if is_at_risk(chance, threshold)}


def _at_risk_as_of(
    session: Session, course: Course, when: datetime, threshold: float
) -> set[int] | None:
    """Those at risk in the newest scoring made by then with a shown chance; None when none was."""
    # A chance was shown when its classification model passed the gate (a prediction is never
    # made before its model, so `created_at` alone dates what was on the page).
    shown = select(ModelVersion.id).where(
        ModelVersion.course_id == course.id,
        ModelVersion.task == "classification",
        ModelVersion.gate_passed,
    )
    made = (
        Prediction.course_id == course.id,
        Prediction.created_at <= when,
        Prediction.classification_model_id.in_(shown),
        Prediction.pass_probability.is_not(None),
    )
    as_of = session.scalar(select(func.max(Prediction.as_of)).where(*made))
    if as_of is None:
        return None
    rows = session.execute(
        select(Prediction.person_id, Prediction.pass_probability, Prediction.created_at)
        .where(*made, Prediction.as_of == as_of)
        .order_by(Prediction.created_at, Prediction.id)
    ).all()
    latest: dict[int, float] = {}
    for pid, chance, _ in rows:
        if chance is not None:
            latest[pid] = chance
    return {pid for pid, chance in latest.items() if chance < threshold}


def became_at_risk(
    session: Session, course: Course, since: datetime | None, threshold: float
) -> set[int]:
    """At risk now and not at risk (or not scored) in the scoring shown at `since`. Empty on a
    first visit or when nothing was shown then (everything would be "new")."""
    if since is None:
        return set()
    before = _at_risk_as_of(session, course, since, threshold)
    if before is None:
        return set()
    return at_risk_ids(session, course, threshold) - before


# --------------------------------------------------------------------------- weekly digest


def subscription(session: Session, course_id: int, person_id: int) -> DigestSubscription | None:
    return session.get(DigestSubscription, (course_id, person_id))


def set_digest(
    session: Session, course_id: int, person_id: int, *, enabled: bool, locale: str
) -> DigestSubscription:
    sub = subscription(session, course_id, person_id)
    if sub is None:
        sub = DigestSubscription(course_id=course_id, person_id=person_id)
        session.add(sub)
    sub.enabled, sub.locale = enabled, locale[:2] if locale[:2] in ("en", "fr") else "en"
    session.flush()
    return sub


def due_subscriptions(session: Session, course_id: int, now: datetime) -> list[DigestSubscription]:
    subs = session.scalars(
        select(DigestSubscription).where(
            DigestSubscription.course_id == course_id, DigestSubscription.enabled
        )
    ).all()
    return [s for s in subs if s.last_sent_at is None or now - s.last_sent_at >= DIGEST_EVERY]


DIGEST_WORDS = {
    "en": {
        "title": "arche-predict, weekly summary for {course}",
        "count_one": "{n} student is at risk (a pass chance under {threshold}).",
        "count_other": "{n} students are at risk (a pass chance under {threshold}).",
        "none": "No student is at risk (a pass chance under {threshold}).",
        "new": "At risk since {date}:",
        "no_new": "No student became at risk since {date}.",
        "open": (
            "Open arche-predict from the course in Moodle to contact them or record a follow-up."
        ),
        "stop": (
            "You get this because you turned the weekly summary on for this course; "
            "turn it off on the course dashboard."
        ),
    },
    "fr": {
        "title": "arche-predict, résumé de la semaine pour {course}",
        "count_one": "{n} étudiant·e est à risque (chance de réussite sous {threshold}).",
        "count_other": "{n} étudiant·es sont à risque (chance de réussite sous {threshold}).",
        "none": "Aucun·e étudiant·e n'est à risque (chance de réussite sous {threshold}).",
        "new": "À risque depuis le {date} :",
        "no_new": "Aucun·e étudiant·e n'est devenu·e à risque depuis le {date}.",
        "open": (
            "Ouvrez arche-predict depuis le cours dans Moodle pour les contacter ou noter un suivi."
        ),
        "stop": (
            "Vous recevez ce message car vous avez activé le résumé hebdomadaire pour ce "
            "cours ; désactivez-le depuis le tableau de bord du cours."
        ),
    },
}


def _percent(value: float, lang: str) -> str:
    """The threshold as the dashboard states it: up to two decimals ("33.3 %", "33,3 %")."""
    n = f"{round(value * 100, 2):.2f}".rstrip("0").rstrip(".")
    return f"{n.replace('.', ',')}\u202f%" if lang == "fr" else f"{n} %"


def digest_text(
    session: Session, course: Course, sub: DigestSubscription, now: datetime, threshold: float
) -> str:
    """The digest in the teacher's language, as plain text: how many are at risk, who became
    at risk since the last digest (or the last week), and where to act."""
    lang = sub.locale if sub.locale in DIGEST_WORDS else "en"
    w = DIGEST_WORDS[lang]
    since = sub.last_sent_at or now - timedelta(days=7)
    risk = at_risk_ids(session, course, threshold)
    new = became_at_risk(session, course, since, threshold)
    names = dict(
        session.execute(select(Person.id, Person.fullname).where(Person.id.in_(new))).all()
    )
    date = since.strftime("%d/%m/%Y") if lang == "fr" else since.strftime("%Y-%m-%d")
    th = _percent(threshold, lang)
    if not risk:
        count = w["none"].format(threshold=th)
    else:
        key = "count_one" if len(risk) == 1 else "count_other"
        count = w[key].format(n=len(risk), threshold=th)
    lines = [w["title"].format(course=course.fullname or course.shortname), "", count]
    if new:
        lines += ["", w["new"].format(date=date)]
        lines += [f"- {names[p]}" for p in sorted(new, key=lambda p: names.get(p, ""))]
    else:
        lines += ["", w["no_new"].format(date=date)]
    lines += ["", w["open"], "", w["stop"]]
    return "\n".join(lines)


@dataclass(frozen=True)
class DigestOutcome:
    person_id: int
    status: str  # sent | refused | unknown | failed
    reason: str = ""


def send_digest(
    session: Session,
    client: MoodleClient,
    site: MoodleSite,
    course: Course,
    sub: DigestSubscription,
    now: datetime,
    threshold: float,
) -> DigestOutcome:
    """Send one teacher their digest through Moodle messaging, once; `last_sent_at` moves on
    when Moodle took it or may have (no answer: never sent twice in a week)."""
    from lti_app.services.contacts import as_html

    teacher = session.get(Person, sub.person_id)
    if teacher is None or teacher.moodle_user_id is None:
        return DigestOutcome(sub.person_id, "failed", "no Moodle account known for this teacher")
    text = digest_text(session, course, sub, now, threshold)
    try:
        outcome = send_message(client, teacher.moodle_user_id, as_html(text))
    except MoodleError as exc:
        note_messaging_refusal(site, exc)
        return DigestOutcome(sub.person_id, "failed", exc.explanation or exc.message)
    if outcome.status in ("sent", "unknown"):
        sub.last_sent_at = now
    if outcome.status == "sent":
        mark_available(site, "messaging")
    return DigestOutcome(sub.person_id, outcome.status, outcome.reason)
