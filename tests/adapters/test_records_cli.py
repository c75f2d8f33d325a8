"""`cti purge / export / wipe / backup / audit verify` against a real temp database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from cti.calendar.rules import Calendars
from cti.cli import main
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.gateway import Database
from records.models import CallbackIn, ConsentIn
from records.schema import migrations
from records.service import RecordsService
from records.settings import RecordsSettings

ROOT = Path(__file__).resolve().parents[2]
OP = Principal("op1", Role.OPERATOR, None, "10.0.0.5")


def make_db(path: Path, collected: datetime) -> None:
    async def go() -> None:
        db = await Database.open(path, migrations())
        svc = RecordsService(db, RecordsSettings(), Calendars.from_settings(CalendarSettings()), lambda: collected)
        await svc.call_taken("c1", "op1", caller_number="0311112222")
        await svc.record_consent(OP, "c1", ConsentIn(answer="yes"))
        await svc.create_callback(OP, "c1", CallbackIn(name="鈴木次郎", phone="050-1111-2222",
                                                       question="住民票の郵送請求", department="koseki"))
        await db.close()

    asyncio.run(go())


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cti.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "cti.sqlite3"}"\n', encoding="utf-8")
    monkeypatch.setenv("CTI_CONFIG", str(path))
    return tmp_path / "cti.sqlite3"


def test_purge_dry_run_and_purge(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_db(config, datetime(2020, 1, 6, 19, 0, tzinfo=TOKYO))  # long past retention
    assert main(["purge", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would purge" in out and "callbacks=1" in out and "contacts=1" in out
    assert "鈴木" not in out
    assert main(["purge"]) == 0
    assert "purged" in capsys.readouterr().out
    raw = config.read_bytes()
    assert "鈴木次郎".encode() not in raw and b"05011112222" not in raw
    assert main(["purge"]) == 0
    assert "callbacks=0" in capsys.readouterr().out


def test_export_wipe_backup_verify(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_db(config, datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO))
    out = tmp_path / "out"
    assert main(["export", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["files"]["callbacks.jsonl"]["rows"] == 1
    assert main(["export", "--out", str(out)]) == 1  # refuses a non-empty directory
    backup = tmp_path / "backup.sqlite3"
    assert main(["backup", str(backup)]) == 0
    assert sqlite3.connect(backup).execute("SELECT name FROM callbacks").fetchall() == [("鈴木次郎",)]
    assert main(["wipe"]) == 2  # needs --confirm
    capsys.readouterr()
    assert main(["wipe", "--confirm"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["remaining_personal_values"]["callbacks"] == 0
    assert "鈴木次郎".encode() not in config.read_bytes()
    assert main(["audit", "verify"]) == 0
    assert "hash chain intact" in capsys.readouterr().out
    actions = [r[0] for r in sqlite3.connect(config).execute("SELECT action FROM audit ORDER BY seq")]
    assert actions[-3:] == ["export", "backup", "wipe"]


def test_audit_verify_names_the_tampered_row(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_db(config, datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO))
    raw = sqlite3.connect(config)
    raw.execute("DROP TRIGGER audit_no_update")
    raw.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = 2")
    raw.commit()
    raw.close()
    assert main(["audit", "verify"]) == 1
    assert "audit row 2: edited" in capsys.readouterr().out


def test_progress_is_quiet_when_piped(config: Path) -> None:
    make_db(config, datetime(2020, 1, 6, 19, 0, tzinfo=TOKYO))
    done = subprocess.run([sys.executable, "-m", "cti", "purge"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "callbacks=1" in done.stdout


def test_progress_draws_on_a_terminal() -> None:
    import io

    from records.retention import terminal_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert terminal_progress(io.StringIO()) is None
    screen = Tty()
    show = terminal_progress(screen)
    assert show is not None
    show("purge", 1, 3)
    show("purge", 3, 3)
    assert screen.getvalue() == "\rpurge: 1/3 (33%)\rpurge: 3/3 (100%)\n"
