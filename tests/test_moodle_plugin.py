"""The companion plugin follows Moodle's plugin-directory conventions (#18, item 9), checked
without a Moodle: every PHP file parses (`php -l`, also run by .ci/run) and carries the GPL v3
or later header and a `@license` tag saying so; `version.php` has every field the directory
reads and supports every Moodle release the READMEs claim; every string the code uses (strings
named in PHP, privacy metadata, capabilities) exists in English and French, and the two
languages hold the same keys, sorted; the capability the log function checks is declared in
`db/access.php` and named by the service.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "moodle_plugin" / "local_archepredict"
PHP_FILES = sorted(PLUGIN.rglob("*.php"))
STRING = re.compile(r"\$string\[\s*'([^']+)'\]\s*=")


def _strings(lang: str) -> list[str]:
    return STRING.findall((PLUGIN / "lang" / lang / "local_archepredict.php").read_text("utf-8"))


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(PLUGIN)))
def test_every_file_is_gpl_v3_or_later_and_parses(path: Path) -> None:
    text = path.read_text("utf-8")
    assert text.startswith("<?php\n// This file is part of Moodle - https://moodle.org/\n")
    assert "GNU General Public License as published by" in text
    assert "either version 3 of the License, or" in text
    assert "@license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later" in text
    assert "Affero" not in text
    if shutil.which("php"):
        done = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_version_file_declares_what_the_directory_reads() -> None:
    text = (PLUGIN / "version.php").read_text("utf-8")
    fields = dict(re.findall(r"\$plugin->(\w+)\s*=\s*([^;]+);", text))
    assert fields["component"] == "'local_archepredict'"
    assert re.fullmatch(r"20\d{8}", fields["version"])
    assert re.fullmatch(r"20\d{8}", fields["requires"])
    assert fields["maturity"].startswith("MATURITY_")
    assert re.fullmatch(r"'\d+\.\d+\.\d+'", fields["release"])
    low, high = (int(v) for v in re.findall(r"\d+", fields["supported"]))
    # The plugin README says 4.2 to 5.3: every one of them is supported.
    readme = (PLUGIN / "README.md").read_text("utf-8")
    assert "Requires Moodle 4.2 to 5.3" in readme
    assert (low, high) == (402, 503)
    assert fields["requires"].startswith("2023042")  # Moodle 4.2's version number


def test_every_string_exists_in_both_languages_sorted() -> None:
    en, fr = _strings("en"), _strings("fr")
    assert en == sorted(en)
    assert fr == sorted(fr)
    assert set(en) == set(fr)
    code = "\n".join(p.read_text("utf-8") for p in PHP_FILES if "/lang/" not in str(p))
    used = set(re.findall(r"'(privacy:metadata:[\w:]+)'", code))
    used |= set(re.findall(r"get_string\(\s*'([^']+)'\s*,\s*'local_archepredict'", code))
    used |= {c.split("/", 1)[1] for c in re.findall(r"'(local/archepredict:\w+)'", code)}
    used.add("pluginname")
    assert used <= set(en), sorted(used - set(en))


def test_the_log_function_checks_a_declared_capability_of_its_own() -> None:
    access = (PLUGIN / "db" / "access.php").read_text("utf-8")
    declared = set(re.findall(r"'(local/archepredict:\w+)'\s*=>", access))
    assert declared == {"local/archepredict:viewlogs"}
    logs = (PLUGIN / "classes" / "external" / "get_course_logs.php").read_text("utf-8")
    assert "require_capability('local/archepredict:viewlogs', $context);" in logs
    assert "report/log:view" not in logs
    services = (PLUGIN / "db" / "services.php").read_text("utf-8")
    assert "'capabilities' => 'local/archepredict:viewlogs'" in services


def test_the_privacy_provider_declares_every_field_the_log_function_sends() -> None:
    provider = (PLUGIN / "classes" / "privacy" / "provider.php").read_text("utf-8")
    declared = set(re.findall(r"'(\w+)' => 'privacy:metadata:archepredict:", provider))
    logs = (PLUGIN / "classes" / "external" / "get_course_logs.php").read_text("utf-8")
    returned = set(re.findall(r"'(\w+)' => \$(?:int|nullableint|text)\(", logs))
    personal = returned - {"id", "contextid", "contextlevel"}  # ids of Moodle's own records
    assert personal <= declared, sorted(personal - declared)
    for never in ("other", "ip", "realuserid"):
        assert f"'{never}'" not in re.sub(r"never `other`, `ip` or `realuserid`", "", logs)
