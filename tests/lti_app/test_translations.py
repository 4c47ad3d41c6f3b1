"""The French catalogue: complete, and the committed .mo compiled from the committed .po.

The .mo is committed (so that `make demo`, the Dockerfile and a wheel need no compile step);
this test catches a .po edited without `pybabel compile -d lti_app/translations`, and a
template string added without its translation.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
FR = ROOT / "lti_app" / "translations" / "fr" / "LC_MESSAGES"


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def test_mo_is_compiled_from_po() -> None:
    po = read_po(io.BytesIO((FR / "messages.po").read_bytes()), locale="fr")
    mo = read_mo(io.BytesIO((FR / "messages.mo").read_bytes()))
    # A plural entry's id and strings are sequences (lists in the .mo's reading).
    want = {_key(m.id): _key(m.string) for m in po if m.id and m.string and not m.fuzzy}
    got = {_key(m.id): _key(m.string) for m in mo if m.id}
    assert got == want


def test_every_message_is_translated(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-o",
            str(pot),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    template = read_po(io.BytesIO(pot.read_bytes()))
    po = read_po(io.BytesIO((FR / "messages.po").read_bytes()), locale="fr")
    translated = {m.id for m in po if m.id and m.string and not m.fuzzy}
    missing = sorted(str(m.id) for m in template if m.id and m.id not in translated)
    # A plural entry is translated in every form French has.
    missing += [str(m.id) for m in po if isinstance(m.id, tuple) and m.string and not all(m.string)]
    assert not missing, f"translate these in {FR / 'messages.po'}: {missing}"
