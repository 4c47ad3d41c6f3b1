"""The fairness audit wired to a site (issue #18, item 7).

An administrator declares, per site, which roster attributes are lawful and relevant to compare
the estimates across (`moodle_site.fairness_groups`; none by default): a standard profile field
Moodle's `core_enrol_get_enrolled_users` returns (department, institution, city, country) or a
custom profile field (`profile_field_<shortname>`). Only the declared attributes are kept
(`person_attribute`, written by the roster sync); un-declaring one deletes its values.

The audit itself is `ml.fairness.fairness_report` run on what the live validation scores: the
estimates actually shown each week of a finished term against the final grades, so the card's
per-group figures describe what teachers saw, at each point of the term. A student without a
value is in the group "not given" (reported, compared like any other group once large enough).
A group under `privacy.min_group_size` students keeps its size and loses its figures: they
would describe a handful of people.

Services never commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import moodle_client as mc
from lti_app.config import PrivacySettings
from lti_app.models import MoodleSite, Person, PersonAttribute
from lti_app.services.json_rows import json_rows

if TYPE_CHECKING:
    from ml.fairness import FairnessSettings

#: The group of students whose attribute Moodle did not give (an empty profile field).
NOT_GIVEN = "not given"

_CUSTOM = re.compile(r"^profile_field_[A-Za-z0-9_]{1,80}$")


class FairnessGroupsError(ValueError):
    """An attribute name that is neither a standard roster field nor a custom profile field."""


def parse_groups(text: str | Iterable[str]) -> list[str]:
    """The declared attributes from the admin form (comma- or space-separated), checked:
    standard fields by name, custom profile fields as `profile_field_<shortname>`. Order kept,
    duplicates dropped; raises `FairnessGroupsError` naming the first unknown one."""
    names = re.split(r"[\s,;]+", text) if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in mc.PROFILE_FIELDS and not _CUSTOM.match(name):
            raise FairnessGroupsError(
                f"{name!r} is not a roster attribute: use one of "
                f"{', '.join(mc.PROFILE_FIELDS)} or profile_field_<shortname> for a custom "
                "profile field"
            )
        if name not in out:
            out.append(name)
    return out


def declare(session: Session, site: MoodleSite, names: Iterable[str]) -> list[str]:
    """Make `names` the site's declared attributes, deleting the stored values of any that is
    no longer declared (data minimisation: nothing kept that the audit does not use). Values
    of newly declared ones arrive with the next roster sync. Returns the declared list."""
    declared = parse_groups(names)
    site.fairness_groups = declared
    people = select(Person.id).where(Person.site_id == site.id)
    dropped = delete(PersonAttribute).where(PersonAttribute.person_id.in_(people))
    if declared:
        dropped = dropped.where(PersonAttribute.name.not_in(declared))
    session.execute(dropped)
    session.flush()
    return declared


def store_attributes(
    session: Session,
    declared: Iterable[str],
    person_ids: Mapping[int, int],
    users: Iterable[mc.EnrolledUser],
) -> int:
    """Keep the declared attributes of the roster's users (Moodle user id -> person id in
    `person_ids`); an attribute Moodle no longer gives is deleted. Returns the values kept."""
    names = list(declared)
    if not names:
        return 0
    wanted: dict[tuple[int, str], str] = {}
    ids = []
    for user in users:
        person_id = person_ids.get(user.id)
        if person_id is None:
            continue
        ids.append(person_id)
        profile = dict(user.profile)
        for name in names:
            value = profile.get(name, "").strip()[:255]
            if value:
                wanted[(person_id, name)] = value
    existing = {
        (row.person_id, row.name): row
        for row in session.scalars(
            select(PersonAttribute).where(
                PersonAttribute.person_id.in_(ids), PersonAttribute.name.in_(names)
            )
        )
    }
    for key, row in existing.items():
        if key not in wanted:
            session.delete(row)
        elif row.value != wanted[key]:
            row.value = wanted[key]
    session.add_all(
        PersonAttribute(person_id=pid, name=name, value=value)
        for (pid, name), value in wanted.items()
        if (pid, name) not in existing
    )
    session.flush()
    return len(wanted)


def labels(session: Session, name: str, person_ids: Iterable[int]) -> pd.Series:
    """Each person's value of attribute `name` ("not given" when none is kept)."""
    ids = [int(i) for i in person_ids]
    rows = dict(
        session.execute(
            select(PersonAttribute.person_id, PersonAttribute.value).where(
                PersonAttribute.name == name, PersonAttribute.person_id.in_(ids)
            )
        ).all()
    )
    return pd.Series([rows.get(i, NOT_GIVEN) for i in ids], index=ids, dtype=object)


def audit_frame(shown: pd.DataFrame, final: pd.Series, pass_mark: float) -> pd.DataFrame:
    """`ml.fairness.COLUMNS` without `group`, from the live validation's inputs: each student's
    estimate as last shown in each week (`checkpoint` = week), with its outcome."""
    # The ML stack loads when a finished course is audited, not when a roster syncs.
    from ml.live_validation import latest_per_week

    known = final.dropna()
    data = latest_per_week(shown[shown["person_id"].isin(known.index)])
    outcome = known.reindex(data["person_id"]).to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "person_id": data["person_id"].to_numpy(),
            "checkpoint": data["week"].to_numpy(dtype=float),
            "passed": (outcome >= pass_mark).astype(int),
            "p_pass": data["p_pass"].to_numpy(dtype=float),
            "flagged": data["flagged"].to_numpy(dtype=bool),
            "grade": outcome,
            "grade_low": data["grade_low"].to_numpy(dtype=float),
            "grade_high": data["grade_high"].to_numpy(dtype=float),
        }
    )


def settings_of(privacy: PrivacySettings) -> FairnessSettings:
    from ml.fairness import FairnessSettings

    # Never compare a group whose own figures are hidden: with two groups, the gap and the
    # shown value would give the hidden one back.
    smallest = max(privacy.fairness_min_group, privacy.min_group_size)
    return FairnessSettings(threshold=privacy.fairness_gap, min_group=smallest, seed=0)


def audit(
    session: Session,
    site: MoodleSite,
    shown: pd.DataFrame,
    final: pd.Series,
    pass_mark: float,
    privacy: PrivacySettings,
) -> dict[str, list[dict[str, Any]]] | None:
    """The audit of each declared attribute (JSON-ready `fairness_report` rows), or None when
    the site declares none."""
    declared = list(site.fairness_groups or [])
    if not declared:
        return None
    from ml.fairness import fairness_report

    frame = audit_frame(shown, final, pass_mark)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in declared:
        groups = labels(session, name, frame["person_id"].unique())
        part = frame.assign(group=groups.reindex(frame["person_id"]).to_numpy())
        rows = json_rows(fairness_report(part, settings_of(privacy)))
        out[name] = [_without_small_groups(row, privacy.min_group_size) for row in rows]
    return out


def _without_small_groups(row: dict[str, Any], min_size: int) -> dict[str, Any]:
    """A group under the site's smallest shown group keeps its size, not its figures: the
    share of a handful of students who failed unflagged describes those few people."""
    sizes = row.get("sizes") or {}
    values = row.get("values") or {}
    row["values"] = {g: (v if sizes.get(g, 0) >= min_size else None) for g, v in values.items()}
    return row


__all__ = [
    "NOT_GIVEN",
    "FairnessGroupsError",
    "audit",
    "audit_frame",
    "declare",
    "labels",
    "parse_groups",
    "store_attributes",
]
