"""Moodle's own file shapes of a simulated offering: what a teacher downloads, what the web
service answers.

* the log-report download (``report/log``) in English and French: UTF-8 BOM, newest first,
  ``4/09/26, 09:29:26`` times in the user's timezone, fields with spaces quoted, translated
  component and event names, English descriptions, no user-id column;
* the gradebook export (``grade/export/txt``) in English and French;
* the ``gradereport_user_get_grade_items`` web-service answer;
* :func:`write_offering`, every shape of one offering in a folder.

Kept apart from the generation (:mod:`simulation.course`) because these are Moodle's formats,
checked against the recordings in ``tests/fixtures``, and change only when Moodle's do.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from ml.events import CONTEXT_MODULE
from simulation.course import Activity, SimulatedOffering
from simulation.templates import TEMPLATES

Lang = Literal["en", "fr"]

COMPONENT_NAMES: Final[dict[str, tuple[str, str]]] = {
    "core": ("System", "Système"),
    "mod_page": ("Page", "Page"),
    "mod_resource": ("File", "Fichier"),
    "mod_url": ("URL", "URL"),
    "mod_forum": ("Forum", "Forum"),
    "mod_quiz": ("Quiz", "Test"),
    "mod_assign": ("Assignment", "Devoir"),
    "assignsubmission_onlinetext": ("Online text submissions", "Remise de textes en ligne"),
    "gradereport_user": ("User report", "Rapport du participant"),
    "mod_lti": ("External tool", "Outil externe"),
}
"""Component display names of the log report, English and French (from the recordings)."""

MODULE_NAMES: Final[dict[str, tuple[str, str]]] = {
    "page": ("Page", "Page"),
    "resource": ("File", "Fichier"),
    "url": ("URL", "URL"),
    "forum": ("Forum", "Forum"),
    "quiz": ("Quiz", "Test"),
    "assign": ("Assignment", "Devoir"),
    "lti": ("External tool", "Outil externe"),
}

LOG_REPORT_HEADERS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("Time", "User full name", "Affected user", "Event context", "Component",
           "Event name", "Description", "Origin", "IP address"),
    "fr": ("Heure", "Nom complet de l'utilisateur", "Utilisateur touché",
           "Contexte de l'événement", "Composant", "Nom de l'événement", "Description",
           "Origine", "Adresse IP"),
}  # fmt: skip


# ------------------------------------------------------------------ Moodle file shapes
def _quote(values: pd.Series) -> pd.Series:
    """Moodle's CSV writer quotes a field when it has a space, comma, quote or newline."""
    s = values.astype(str)
    needs = s.str.contains(r'[ ,"\n]', regex=True)
    quoted = '"' + s.str.replace('"', '""', regex=False) + '"'
    return quoted.where(needs, s)


def _csv(frame: pd.DataFrame, header: Sequence[str]) -> str:
    head = ",".join(_quote(pd.Series(list(header))).tolist())
    if frame.empty:
        return head + "\n"
    cols = [_quote(frame[c]) for c in frame.columns]
    line = cols[0]
    for c in cols[1:]:
        line = line + "," + c
    return head + "\n" + "\n".join(line.tolist()) + "\n"


def _moodle_time(epoch: pd.Series | np.ndarray, tz: str) -> pd.Series:
    """``4/09/26, 09:29:26``: day without leading zero, two-digit year, user's timezone."""
    local = pd.Series(pd.to_datetime(np.asarray(epoch, dtype=np.int64), unit="s", utc=True))
    local = local.dt.tz_convert(tz)
    return local.dt.day.astype(str) + local.dt.strftime("/%m/%y, %H:%M:%S")


def log_report_csv(
    off: SimulatedOffering,
    lang: Lang = "en",
    tz: str = "Europe/Paris",
    wording: Literal["5.1", "4.x"] = "5.1",
) -> str:
    """The ``report/log`` download of the offering's whole log, as Moodle writes it.

    ``wording``: the event descriptions of Moodle 5.1, or those of 4.1 to 5.0 where they
    differ (the import must read both)."""
    log = off.log.iloc[::-1]  # newest first
    names = off.users.set_index("userid")["fullname"]
    li = 0 if lang == "en" else 1
    acts = {a.cmid: a for a in off.spec.activities}
    course_label = ("Course: " if lang == "en" else "Cours: ") + off.spec.fullname
    ctx_map = {
        cm: f"{MODULE_NAMES[a.modname][li]}: {a.name}" for cm, a in acts.items()
    }  # fmt: skip
    is_mod = log["contextlevel"].to_numpy() == CONTEXT_MODULE
    ctx = pd.Series(log["contextinstanceid"].map(ctx_map).to_numpy(dtype=object))
    ctx[~is_mod] = course_label
    code = log["eventname"].map({t.eventname: i for i, t in enumerate(TEMPLATES)}).to_numpy()
    event_name = pd.Series(np.array([(t.en, t.fr)[li] for t in TEMPLATES], dtype=object)[code])
    component = pd.Series(
        log["component"].astype(str).map(lambda c: COMPONENT_NAMES.get(c, (c, c))[li]).to_numpy()
    )
    rel = log["relateduserid"]
    affected = pd.Series(rel.map(names).astype(object).fillna("-").to_numpy(dtype=object))
    aux = np.asarray(off.log.attrs.get("aux", np.zeros(len(off.log), np.int64)))[::-1]
    desc = _descriptions(log, code, aux, acts, older=wording == "4.x")
    out = pd.DataFrame(
        {
            "time": _moodle_time(log["timecreated"].to_numpy(), tz),
            "user": log["userid"].map(names).to_numpy(),
            "affected": affected,
            "context": ctx,
            "component": component,
            "event": event_name,
            "description": desc,
            "origin": log["origin"].astype(str).to_numpy(),
            "ip": "10.0.0." + (log["userid"].to_numpy() % 250 + 1).astype(str),
        }
    )
    return "\ufeff" + _csv(out, LOG_REPORT_HEADERS[lang])


def _descriptions(
    log: pd.DataFrame,
    code: np.ndarray,
    aux: np.ndarray,
    acts: dict[int, Activity],
    *,
    older: bool = False,
) -> pd.Series:
    desc = np.empty(len(log), dtype=object)
    fields = {
        "u": log["userid"].astype(str).to_numpy(),
        "c": log["courseid"].astype(str).to_numpy(),
        "cm": log["contextinstanceid"].astype(str).to_numpy(),
        "o": log["objectid"].astype(str).to_numpy(),
        "r": log["relateduserid"].astype(str).to_numpy(),
        "a": aux.astype(str),
        "mod": log["contextinstanceid"]
        .map({cm: a.modname for cm, a in acts.items()})
        .astype(str)
        .to_numpy(),
    }
    for k, t in enumerate(TEMPLATES):
        rows = np.flatnonzero(code == k)
        if rows.size == 0:
            continue
        text = pd.Series(np.full(rows.size, "", dtype=object))
        rest = (t.description_4x or t.description) if older else t.description
        while "{" in rest:
            lit, _, rest = rest.partition("{")
            name, _, rest = rest.partition("}")
            text = text + lit + fields[name][rows]
        desc[rows] = (text + rest).to_numpy()
    return pd.Series(desc)


def grades_export_csv(off: SimulatedOffering, lang: Lang = "en", downloaded: int = 0) -> str:
    """The gradebook's plain-text export: real values with 2 decimals, ``-`` when missing."""
    li = 0 if lang == "en" else 1
    users = off.roster.merge(off.grades, on="userid", how="left")
    users = users.sort_values(["lastname", "firstname"], kind="stable")
    header = (
        ["First name", "Last name", "ID number", "Institution", "Department", "Email address"]
        if lang == "en"
        else [
            "Prénom",
            "Nom",
            "Numéro d'identification",
            "Institution",
            "Département",
            "Adresse de courriel",
        ]
    )
    out = pd.DataFrame(
        {
            "f": users["firstname"].to_numpy(),
            "l": users["lastname"].to_numpy(),
            "i": users["idnumber"].to_numpy(),
            "inst": "",
            "dep": "",
            "e": users["email"].to_numpy(),
        }
    )
    real = "(Real)" if lang == "en" else "(Brut)"
    sep = ": " if lang == "en" else " "
    for a in off.spec.activities:
        if a.itemid is None:
            continue
        header.append(f"{MODULE_NAMES[a.modname][li]}{sep}{a.name} {real}")
        out[f"g{a.itemid}"] = _fmt_grade(users.get(a.itemid))
    header.append("Course total (Real)" if lang == "en" else "Total du cours (Brut)")
    out["total"] = _fmt_grade(users["course_total"])
    header.append(
        "Last downloaded from this course"
        if lang == "en"
        else "Dernier téléchargement depuis ce cours"
    )
    out["dl"] = str(downloaded)
    return _csv(out, header)


def _fmt_grade(values: pd.Series | None) -> pd.Series:
    if values is None:
        return pd.Series(dtype=str)
    v = pd.to_numeric(values).to_numpy(dtype=float)
    return pd.Series(np.where(np.isnan(v), "-", np.char.mod("%.2f", np.nan_to_num(v))))


def course_grading_json(off: SimulatedOffering) -> dict[str, Any]:
    """The answer of the companion plugin's ``local_archepredict_get_course_grading``: the course
    total's range and its "Grade to pass", half of the maximum (10/20 on the tool's scale)."""
    return {
        "itemid": 1,
        "gradetype": 1,
        "grademin": 0.0,
        "grademax": float(off.spec.grademax),
        "gradepass": float(off.spec.grademax) / 2,
        "aggregation": 13,  # natural
        "aggregateonlygraded": True,
    }


def grade_items_json(off: SimulatedOffering) -> dict[str, Any]:
    """The answer of ``gradereport_user_get_grade_items`` (courseid, userid=0): every student's
    activity items and the course total (``itemtype == "course"``), raw points and max."""
    items = [a for a in off.spec.activities if a.itemid is not None]
    maxes = {a.itemid: (10.0 if a.modname == "quiz" else 20.0) for a in items}
    usergrades = []
    names = off.users.set_index("userid")
    grades = off.grades.set_index("userid")
    for uid in off.roster["userid"].to_numpy():
        row = grades.loc[uid] if uid in grades.index else None
        gi = []
        for a in items:
            assert a.itemid is not None
            raw = None if row is None or a.itemid not in row else row[a.itemid]
            gi.append(_grade_item(a.itemid, a.name, "mod", a.modname, a.instance, a.cmid, raw,
                                  maxes[a.itemid]))  # fmt: skip
        total = None if row is None else row.get("course_total")
        gi.append(_grade_item(1, None, "course", None, 1, None, total, off.spec.grademax))
        usergrades.append(
            {
                "courseid": off.courseid,
                "courseidnumber": f"{off.spec.shortname}-{off.start.year}",
                "userid": int(uid),
                "userfullname": str(names.loc[uid, "fullname"]),
                "useridnumber": str(names.loc[uid, "idnumber"]),
                "maxdepth": 2,
                "gradeitems": gi,
            }
        )
    return {"usergrades": usergrades, "warnings": []}


def _grade_item(
    itemid: int, name: str | None, itemtype: str, module: str | None, instance: int,
    cmid: int | None, raw: Any, grademax: float,
) -> dict[str, Any]:  # fmt: skip
    value = None if raw is None or pd.isna(raw) else float(raw)
    item: dict[str, Any] = {
        "id": itemid,
        "itemname": name,
        "itemtype": itemtype,
        "itemmodule": module,
        "iteminstance": instance,
        "itemnumber": 0 if itemtype == "mod" else None,
        "idnumber": "" if itemtype == "mod" else None,
        "categoryid": 1 if itemtype == "mod" else None,
        "outcomeid": None,
        "scaleid": None,
        "locked": False,
    }
    if cmid is not None:
        item["cmid"] = cmid
    item.update(
        {
            "graderaw": value,
            "gradeformatted": "-" if value is None else f"{value:.2f}",
            "grademin": 0,
            "grademax": grademax,
            "rangeformatted": f"0&ndash;{grademax:g}",
            "percentageformatted": "-" if value is None else f"{100 * value / grademax:.2f} %",
            "feedback": "",
            "feedbackformat": 2,
        }
    )
    return item


def write_offering(off: SimulatedOffering, directory: str, tz: str = "Europe/Paris") -> None:
    """Write every Moodle shape of one offering into ``directory`` (for the demo and fixtures)."""
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    off.log.to_csv(d / "standard_log.csv", index=False)
    for lang in ("en", "fr"):
        (d / f"logs_export_{lang}.csv").write_text(log_report_csv(off, lang, tz), "utf-8")
        (d / f"grades_export_{lang}.csv").write_text(grades_export_csv(off, lang), "utf-8")
    (d / "gradereport_user_get_grade_items.json").write_text(
        json.dumps(grade_items_json(off), ensure_ascii=False, indent=1), "utf-8"
    )
    buf = io.StringIO()
    off.users.to_csv(buf, index=False)
    (d / "users.csv").write_text(buf.getvalue(), "utf-8")
