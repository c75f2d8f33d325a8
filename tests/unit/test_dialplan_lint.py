"""asterisklint over the dialplan we ship (dialplan/) and over it plus the test overlay (dialplan/lab/).

Lint errors fail. One finding is filtered, because asterisklint 0.4.3 does not know valid
Asterisk syntax: the category-append header ``[globals](+)`` (E_CONF_BAD_LINE) and the
variables under it (E_CONF_KEY_INVALID). Asterisk 22 accepts it; the e2e tests check that
the overlay's globals really override the shipped ones (CTI_AGI_PORT points at the test server).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIALPLAN = ROOT / "dialplan"
ASTERISKLINT = Path(sys.executable).with_name("asterisklint")
FINDING = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+) (?P<code>[EW]_[A-Z_]+): (?P<text>.*)$")


def lint(directory: Path) -> list[str]:
    """asterisklint dialplan-check in `directory`; every finding as 'file:line CODE: text'."""
    assert ASTERISKLINT.is_file(), f"asterisklint missing at {ASTERISKLINT} (uv sync --group dev)"
    result = subprocess.run(
        [str(ASTERISKLINT), "dialplan-check", "extensions.conf"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = [line for line in (result.stdout + result.stderr).splitlines() if FINDING.match(line)]
    other = [line for line in (result.stdout + result.stderr).splitlines() if line and not FINDING.match(line)]
    assert not other, f"asterisklint printed something unexpected: {other}"
    assert (result.returncode != 0) == bool(findings), (result.returncode, findings)
    return findings


def append_sections(path: Path) -> set[int]:
    """Line numbers inside `[name](+)` sections (header included) of one config file."""
    inside, lines = False, set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("["):
            inside = bool(re.match(r"\[[^\]]+\]\(\+\)", line))
        if inside:
            lines.add(number)
    return lines


def not_filtered(findings: list[str], directory: Path) -> list[str]:
    kept = []
    for finding in findings:
        match = FINDING.match(finding)
        assert match is not None
        if match["code"] in ("E_CONF_BAD_LINE", "E_CONF_KEY_INVALID") and int(match["line"]) in append_sections(
            directory / match["file"]
        ):
            continue
        kept.append(finding)
    return kept


def test_shipped_dialplan_is_clean() -> None:
    assert lint(DIALPLAN) == []


def test_dialplan_with_test_overlay_is_clean(tmp_path: Path) -> None:
    shutil.copy(DIALPLAN / "extensions.conf", tmp_path)
    shutil.copy(DIALPLAN / "lab" / "extensions-local.conf", tmp_path)
    findings = lint(tmp_path)
    assert findings, "the overlay is included (#tryinclude) and its [globals](+) is reported"
    assert not_filtered(findings, tmp_path) == []


def test_lint_catches_real_mistakes(tmp_path: Path) -> None:
    """The check above can fail: a typo'd application and a Goto to nowhere are reported."""
    text = (DIALPLAN / "extensions.conf").read_text(encoding="utf-8")
    text = text.replace("Queue(${CTI_QUEUE}", "Queeu(${CTI_QUEUE}", 1)
    text = text.replace("Goto(cti-closed,s,1)", "Goto(cti-closd,s,1)", 1)
    (tmp_path / "extensions.conf").write_text(text, encoding="utf-8")
    codes = {FINDING.match(f)["code"] for f in lint(tmp_path)}  # type: ignore[index]
    assert {"E_APP_MISSING", "E_DP_GOTO_NOCONTEXT"} <= codes


@pytest.mark.parametrize("name", ["extensions.conf", "queues.conf", "manager.conf", "modules.conf", "pjsip.conf"])
def test_shipped_files_exist_and_are_commented(name: str) -> None:
    text = (DIALPLAN / name).read_text(encoding="utf-8")
    assert text.startswith("; cti: "), f"{name} starts with a comment saying what it is for"


def test_queue_settings_asterisk22_accepts() -> None:
    text = (DIALPLAN / "queues.conf").read_text(encoding="utf-8")
    settings = {
        key.strip(): value.split(";")[0].strip()
        for key, _, value in (line.partition("=") for line in text.splitlines())
        if value and not key.lstrip().startswith(";")
    }
    assert "eventwhencalled" not in settings and "eventmemberstatus" not in settings
    assert settings["ringinuse"] == "no"
    assert settings["setinterfacevar"] == "yes"
    assert settings["autofill"] == "yes"
    assert settings["announce-position"] == "no"  # built from English number prompts
    assert settings["periodic-announce"] == "cti/queue-wait"
