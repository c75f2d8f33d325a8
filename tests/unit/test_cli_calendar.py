"""`cti calendar at DATETIME [--json]`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest

from cti.app import migrations
from cti.calendar.rules import Override, Which
from cti.cli import main
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.store_backend import open_store
from records.trail import AuditTrail
from supervision.calendar_store import insert_override, save_emergency

SUPERVISOR = Principal(user_id="sv1", role=Role.SUPERVISOR, department=None, client_ip="127.0.0.1")
NOW = datetime(2026, 12, 1, 17, 0, tzinfo=TOKYO)
TRAIL = AuditTrail(lambda: NOW)  # no audit key configured in this config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_shape_from_the_issue(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))
    code, out, _ = run(capsys, "calendar", "at", "2026-12-28T18:00:00+09:00", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["at"] == "2026-12-28T18:00:00+09:00"
    assert report["call_center"]["open"] is True
    assert report["call_center"]["reason"] is None and report["call_center"]["next_open"] is None
    assert report["office"]["open"] is False
    assert report["office"]["reason"]
    assert report["office"]["next_open"] == "2027-01-04T08:30:00+09:00"
    assert report["handover_date"] == "2027-01-04"


def test_closed_call_center_and_holiday_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calendar", "at", "2026-05-06T10:00:00+09:00", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["office"]["reason"] == "holiday"
    assert report["office"]["holiday_name"] == "振替休日"
    _, out, _ = run(capsys, "calendar", "at", "2027-01-02T10:00:00+09:00", "--json")
    assert json.loads(out)["call_center"] == {
        "open": False, "reason": "year_end", "reason_text": "年末年始のため受付を休止しています",
        "holiday_name": None, "next_open": "2027-01-04T08:00:00+09:00",
    }


def test_plain_output_is_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calendar", "at", "2026-12-28T18:00:00+09:00")
    assert code == 0
    assert "コールセンター: 開いています" in out
    assert "引き継ぎ日: 2027-01-04" in out


@pytest.mark.parametrize("instant", ["2026-12-28T18:00:00", "yesterday", "2026-13-01T00:00:00+09:00"])
def test_bad_instants_exit_2_with_a_clear_message(capsys: pytest.CaptureFixture[str], instant: str) -> None:
    code, out, err = run(capsys, "calendar", "at", instant, "--json")
    assert code == 2
    assert out == ""
    assert "cti calendar at:" in err


def test_stored_runtime_overrides_and_the_emergency_switch_apply(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, store_target: str) -> None:
    """What the supervisors set at runtime (stored in the database, SQLite or PostgreSQL) is what
    `calendar at` shows."""
    store = store_target
    config = tmp_path / "cti.toml"
    url = f'url = "{store}"\n' if store.startswith("postgresql://") else ""
    config.write_text(f'[store]\npath = "{tmp_path / "cti.sqlite3"}"\n{url}', encoding="utf-8")

    async def seed() -> None:
        db = await open_store(store, migrations())
        try:
            await db.write(lambda conn: insert_override(conn, TRAIL, SUPERVISOR, Override(
                kind="closure", applies_to=Which.OFFICE, start=datetime(2026, 12, 2, 8, 0, tzinfo=TOKYO),
                end=datetime(2026, 12, 2, 12, 0, tzinfo=TOKYO), reason="庁舎の停電"), NOW))
            await db.write(lambda conn: save_emergency(conn, TRAIL, SUPERVISOR, "台風", False, NOW))
        finally:
            await db.close()

    code, out, _ = run(capsys, "calendar", "at", "2026-12-02T07:00:00+09:00", "--json", "--config", str(config))
    assert code == 0 and json.loads(out)["office"]["next_open"] == "2026-12-02T08:30:00+09:00"  # nothing stored
    asyncio.run(seed())
    code, out, _ = run(capsys, "calendar", "at", "2026-12-02T07:00:00+09:00", "--json", "--config", str(config))
    report = json.loads(out)
    assert code == 0
    assert report["office"]["next_open"] == "2026-12-02T12:00:00+09:00"  # the closure moved the opening
    assert report["handover_date"] == "2026-12-02"
    assert report["call_center"]["open"] is False and report["call_center"]["reason"] == "emergency"
    code, out, _ = run(capsys, "calendar", "at", "2026-12-02T09:00:00+09:00", "--config", str(config))
    assert code == 0 and "臨時休業です（庁舎の停電）" in out
