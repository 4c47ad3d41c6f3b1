"""Built pages shared by every web worker through the database (#19, item 5).

`page_cache.PageCache` keeps built pages per worker process; with several workers (and several
machines) each built the same page after every scoring, a second of CPU each while teachers
waited. Here a built page is kept once, in `page_build`, under the digest of its cache key (the
key moves with every input the page reads, so a stored build is never stale): the scoring
builds the course's dashboard for each language right after it stores the predictions, and a
worker missing a page in its own cache reads it here before building it. The payload is text
the web layer encodes (Flask's tagged JSON: no pickle).

Services never commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import PageBuild
from lti_app.services.sync import dialect_insert

#: A course's builds older than this go when a newer one is kept: their keys are dead (a new
#: scoring, sync or setting moved them), and a day leaves room for a page still being read.
KEEP = timedelta(days=1)


def digest(key: Hashable) -> str:
    """The stored name of a cache key (its repr: plain values, the same in every process)."""
    return hashlib.sha256(repr(key).encode("utf-8")).hexdigest()


def load(session: Session, name: str) -> str | None:
    return session.scalar(select(PageBuild.payload).where(PageBuild.digest == name))


def store(session: Session, name: str, course_id: int, payload: str) -> None:
    """Keep a build (the first of several workers building the same key wins, the others' are
    the same page), and drop the course's dead ones."""
    now = utcnow()
    session.execute(
        delete(PageBuild).where(PageBuild.course_id == course_id, PageBuild.built_at < now - KEEP)
    )
    session.execute(
        dialect_insert(session)(PageBuild)
        .values(digest=name, course_id=course_id, built_at=now, payload=payload)
        .on_conflict_do_nothing(index_elements=["digest"])
    )


__all__ = ["KEEP", "digest", "load", "store"]
