"""The records CLIs with the store on PostgreSQL (store.url): purge and export work on it; backup and
wipe, which work on SQLite's file, refuse and say what to do instead; serve wants a shared session key."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from pg_support import PgCluster

from cti.calendar.rules import Calendars
from cti.cli import main
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.store_backend import open_store
from records.models import CallbackIn, ConsentIn
from records.schema import migrations
from records.service import RecordsService
from records.settings import RecordsSettings

OP = Principal("op1", Role.OPERATOR, None, "10.0.0.5")


@pytest.fixture
def pg_config(pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = pg_cluster.new_url()
    path = tmp_path / "cti.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "unused.sqlite3"}"\nurl = "{url}"\n', encoding="utf-8")
    monkeypatch.setenv("CTI_CONFIG", str(path))
    return url


def make_records(url: str, collected: datetime) -> None:
    async def go() -> None:
        db = await open_store(url, migrations())
        svc = RecordsService(db, RecordsSettings(), Calendars.from_settings(CalendarSettings()), lambda: collected)
        await svc.call_taken("c1", "op1", caller_number="0311112222")
        await svc.record_consent(OP, "c1", ConsentIn(answer="yes"))
        await svc.create_callback(OP, "c1", CallbackIn(name="鈴木次郎", phone="050-1111-2222",
                                                       question="住民票の郵送請求", department="koseki"))
        await db.close()

    asyncio.run(go())


def test_purge_and_export_run_on_postgresql_backup_and_wipe_refuse(
    pg_config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    make_records(pg_config, datetime(2020, 1, 6, 19, 0, tzinfo=TOKYO))  # long past retention
    out = tmp_path / "out"
    assert main(["export", "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text("utf-8"))["files"]["callbacks.jsonl"]["rows"] == 1
    assert main(["purge", "--dry-run"]) == 0
    assert "callbacks=1" in capsys.readouterr().out
    assert main(["purge"]) == 0
    assert "purged" in capsys.readouterr().out and main(["purge"]) == 0
    assert "callbacks=0" in capsys.readouterr().out
    assert not (tmp_path / "unused.sqlite3").exists()  # nothing went to the SQLite path
    assert main(["backup", str(tmp_path / "b.sqlite3")]) == 2
    assert "pg_dump" in capsys.readouterr().err
    assert main(["wipe", "--confirm"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err


def test_serve_on_postgresql_refuses_to_start_without_a_shared_session_key(
    pg_config: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """Each node would make up its own key: a login made on one node would not verify on the other."""
    assert main(["serve"]) == 2
    assert "security.session_key" in capsys.readouterr().err
