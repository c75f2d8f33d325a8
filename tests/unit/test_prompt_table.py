"""dialplan/prompts/ja.tsv covers every prompt the dialplan plays, and synthesize.py reads it strictly
(the speech itself is checked against the generated files in tests/e2e/test_sip_phones.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
import wave
from pathlib import Path
from types import ModuleType

import pytest

from cti.calendar.rules import Reason  # the calendar's reasons for being closed: each has its announcement

DIALPLAN = Path(__file__).resolve().parents[2] / "dialplan"
TABLE = DIALPLAN / "prompts" / "ja.tsv"


def synthesizer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cti_prompt_synthesizer", DIALPLAN / "prompts" / "synthesize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SYNTH = synthesizer()
NAMES = {p.name for p in SYNTH.read_table(TABLE)}


def played_by_the_dialplan() -> set[str]:
    """Every sound name the dialplan and the queue play, with the variable parts expanded."""
    text = (DIALPLAN / "extensions.conf").read_text(encoding="utf-8") + (DIALPLAN / "queues.conf").read_text(
        encoding="utf-8")
    literal = set(re.findall(r"\b(cti/[a-z_-]+[a-z_])(?=[,)&\s])", text))
    names = {n for n in literal if not n.endswith("-")}
    assert {"cti/welcome", "cti/menu", "cti/transfer", "cti/callback-greeting", "cti/queue-wait"} <= names
    # Gosub(cti-prompt,s,1(cti/closed-${CTI_REASON},...)): one per reason cti sends.
    assert "cti/closed-${CTI_REASON}" in text
    names |= {f"cti/closed-{reason.value}" for reason in Reason}
    # [cti-say-datetime]: month, day, weekday, am/pm, hour (12-hour), minute (none on the hour).
    assert "cti/month-${mon}&cti/day-${day}&cti/wday-${wday}&cti/${half}&cti/hour-$[${hour} % 12]" in text
    names |= {f"cti/month-{m}" for m in range(1, 13)} | {f"cti/day-{d}" for d in range(1, 32)}
    names |= {f"cti/wday-{w}" for w in range(7)} | {"cti/am", "cti/pm"}
    names |= {f"cti/hour-{h}" for h in range(12)} | {f"cti/minute-{m}" for m in range(1, 60)}
    return names


def test_every_prompt_the_dialplan_plays_is_in_the_table() -> None:
    missing = played_by_the_dialplan() - NAMES
    assert not missing, f"no text for {sorted(missing)} in {TABLE}"


def test_the_table_has_nothing_the_dialplan_never_plays() -> None:
    assert NAMES - played_by_the_dialplan() == set()


def test_readings_fix_what_the_synthesiser_misreads() -> None:
    rows = {p.name: p for p in SYNTH.read_table(TABLE)}
    assert (rows["cti/day-1"].text, rows["cti/day-1"].reading) == ("1日", "ついたち")
    assert rows["cti/hour-0"].reading == "れいじ"
    assert rows["cti/welcome"].reading == rows["cti/welcome"].text  # no reading column: the text


@pytest.mark.parametrize("line", [
    "cti/x",  # no text
    "cti/x\tone\ttwo\tthree",  # too many fields
    "../etc/passwd\ttext",  # a name that would leave the sounds directory
    "cti/welcome\tこんにちは\ncti/welcome\tこんばんは",  # a name twice
])
def test_malformed_tables_are_refused(tmp_path: Path, line: str) -> None:
    table = tmp_path / "bad.tsv"
    table.write_text("# comment\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError):
        SYNTH.read_table(table)


def test_a_recording_replaces_its_row_and_the_rest_is_synthesised(tmp_path: Path) -> None:
    table = tmp_path / "t.tsv"
    table.write_text("cti/welcome\tお電話ありがとうございます。\ncti/am\t午前\n", encoding="utf-8")
    recordings = tmp_path / "rec" / "cti"
    recordings.mkdir(parents=True)
    with wave.open(str(recordings / "welcome.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 8000)
    made, kept = SYNTH.synthesize(SYNTH.read_table(table), tmp_path / "out", keep=tmp_path / "rec")
    assert (made, kept) == (1, 1)
    assert (tmp_path / "out" / "cti" / "welcome.wav").read_bytes() == (recordings / "welcome.wav").read_bytes()
    with wave.open(str(tmp_path / "out" / "cti" / "am.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000 * 0.3  # 午前 is a word, not a click
