"""LTI role URIs to the tool's three access levels.

Moodle sends `membership#Instructor` to anyone holding `mod/lti:manage` in the course, `Learner`
otherwise, and adds the Administrator URIs for site administrators. Anything else (a missing,
unknown or malformed roles claim) gets learner-level access: it can only ever see the person's
own data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ADMINISTRATORS = frozenset(
    {
        "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    }
)
# LTI 1.3 still allows the short context-role names (Moodle's Names and Roles answers use them).
_SHORT_INSTRUCTOR = {"Instructor"}


@dataclass(frozen=True)
class Access:
    """`role` is 'teacher' or 'learner' within the launch's course; `is_admin` opens admin pages."""

    role: str
    is_admin: bool


def access_for(roles: Any) -> Access:
    if not isinstance(roles, list):
        return Access(role="learner", is_admin=False)
    names = {r for r in roles if isinstance(r, str)}
    is_teacher = bool(names & ({INSTRUCTOR} | _SHORT_INSTRUCTOR))
    is_admin = bool(names & ADMINISTRATORS)
    return Access(role="teacher" if is_teacher else "learner", is_admin=is_admin)


def member_role(roles: Any) -> str:
    """The enrolment role of a Names and Roles member ('teacher' or 'learner')."""
    return access_for(roles).role
