"""Records findings of issues 13 and 14: each test failed on the code before its fix.

Server-side contacts (the browser cannot claim a call or date it), malformed input answered 4xx,
the FAQ-gap note only with consent, refused list attempts audited, reading a call only while it is
the operator's and open, backups and exports private and purged, an audit chain that a holder of
the database file alone can neither rebuild nor shorten unnoticed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import test_records_api
from raw_store import raw_store
from test_records_api import CALLBACK, FRIDAY_EVENING, OP, OP2, ZEIMU, fetch, who

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from cti.core.logs import JsonLineFormatter
from cti.core.principal import Principal, Role
from cti.gateway import Database
from cti.store_backend import open_store
from records import periodic
from records.audit import Anchor, parse_anchor
from records.backups import backup, new_backup_path
from records.keys import CALL_FEED
from records.models import ConsentIn
from records.retention import export, verify_audit
from records.schema import migrations
from records.service import RecordsService
from records.settings import RecordsSettings
from records.trail import head
from telephony.events import CallArrived, CallEnded, CallRouted, OperatorConnected

env = test_records_api.env  # the same app fixture: records wired as create_app wires it
SEAT = "PJSIP/op101"
KEY = "k" * 32


def answered(call_id: str, number: str = "0312345678", seat: str = SEAT) -> list[Any]:
    at = FRIDAY_EVENING
    return [CallArrived(call_id=call_id, at=at, caller_number=number, caller_name=None, dialled_number="0355550000"),
            CallRouted(call_id=call_id, at=at, route="open", reason=None, category="gomi"),
            OperatorConnected(call_id=call_id, at=at, interface=seat, member_name=None, queue="operators",
                              hold_time=3)]


def hung_up(call_id: str) -> CallEnded:
    return CallEnded(call_id=call_id, at=FRIDAY_EVENING, reason="answered", hung_up_by="citizen", cause=16,
                     cause_text="Normal Clearing", last_state="Up", duration_s=60.0, talk_s=50.0, interface=SEAT)


async def feed(app: Any, events: Any) -> None:
    created = app[CALL_FEED].on_events(events)
    if created is not None:
        await created


# ---- issue 13: server-side contacts -------------------------------------------------------------


async def test_the_contact_exists_after_operator_connected_without_any_browser_request(env: Any) -> None:
    client, _, app = env
    app[CALL_FEED].seats.take("op1", SEAT)
    await feed(app, answered("srv-1", "+81-3-1234-5678"))
    rows = await fetch(app, "SELECT operator, caller_number, started_at, ivr_category FROM contacts")
    assert rows == [("op1", "0312345678", FRIDAY_EVENING.isoformat(timespec="microseconds"), "gomi")]
    # the operator who really answered records consent and the callback: no 409, no 403
    assert (await client.post("/api/records/contacts/srv-1/consent", json={"answer": "yes"}, headers=OP)).status == 201
    assert (await client.post("/api/records/contacts/srv-1/callbacks", json=CALLBACK, headers=OP)).status == 201
    await feed(app, [hung_up("srv-1")])
    assert (await fetch(app, "SELECT ended_at FROM contacts"))[0][0] is not None


async def test_another_operator_can_neither_claim_nor_write_to_a_call(env: Any) -> None:
    client, _, app = env
    # op2 tries to claim the call before op1's answer reaches the server: refused, nothing stored
    r = await client.post("/api/records/contacts", json={"call_id": "srv-2"}, headers=OP2)
    assert r.status == 422 and (await r.json())["error"]["field"] == "call_id"
    assert await fetch(app, "SELECT count(*) FROM contacts") == [(0,)]
    app[CALL_FEED].seats.take("op1", SEAT)
    await feed(app, answered("srv-2"))
    for method, path, body in (("POST", "/api/records/contacts/srv-2/consent", {"answer": "yes"}),
                               ("POST", "/api/records/contacts/srv-2/callbacks", CALLBACK),
                               ("PATCH", "/api/records/contacts/srv-2", {"outcome": "resolved"}),
                               ("GET", "/api/records/contacts/srv-2", None)):
        r = await client.request(method, path, json=body, headers=OP2)
        assert r.status == 404, (method, path)
        missing = await client.request(method, path.replace("srv-2", "no-such-call"), json=body, headers=OP2)
        assert (await r.json())["error"]["code"] == (await missing.json())["error"]["code"]  # indistinguishable
    denied = await fetch(app, "SELECT actor, action FROM audit WHERE outcome = 'denied' ORDER BY seq")
    assert denied == [("op2", "consent"), ("op2", "create"), ("op2", "update"), ("op2", "read")]


async def test_started_at_cannot_be_set_by_the_client(env: Any) -> None:
    client, _, app = env
    for body in ({"started_at": "2099-01-01T00:00:00+09:00"}, {"caller_number": "0312345678"},
                 {"started_at": "0001-01-01T00:00:00+14:00"}):
        r = await client.post("/api/records/contacts", json=body, headers=OP)
        assert r.status == 422, body
        assert (await r.json())["error"]["code"] == "unknown_field"
    assert (await client.post("/api/records/contacts", json={}, headers=OP)).status == 410
    app[CALL_FEED].seats.take("op1", SEAT)
    await feed(app, answered("srv-3"))
    r = await client.patch("/api/records/contacts/srv-3", json={"ended_at": "0001-01-01T00:00:00+14:00"}, headers=OP)
    assert r.status == 422 and (await r.json())["error"]["field"] == "ended_at"
    assert await fetch(app, "SELECT count(*) FROM contacts") == [(1,)]


# ---- issue 14 --------------------------------------------------------------------------------------


async def test_a_5000_digit_number_is_400_in_the_error_envelope(env: Any) -> None:
    client, _, app = env
    app[CALL_FEED].seats.take("op1", SEAT)
    await feed(app, answered("big"))
    body = '{"faq_entries": [' + "9" * 5000 + "]}"
    for method, path in (("PATCH", "/api/records/contacts/big"), ("POST", "/api/records/contacts")):
        r = await client.request(method, path, data=body, headers={**OP, "Content-Type": "application/json"})
        assert r.status == 400, method
        assert (await r.json())["error"]["code"] == "invalid_json"


async def test_the_faq_gap_note_needs_consent(env: Any) -> None:
    client, _, app = env
    app[CALL_FEED].seats.take("op1", SEAT)
    await feed(app, answered("gap"))
    r = await client.patch("/api/records/contacts/gap", headers=OP,
                           json={"outcome": "unanswered", "gap_note": "犬の登録について山田さんが"})
    assert r.status == 409 and (await r.json())["error"]["field"] == "gap_note"
    assert await fetch(app, "SELECT count(*) FROM faq_gaps") == [(0,)]
    # without the free text the gap (category, entries) is recorded
    r = await client.patch("/api/records/contacts/gap", headers=OP, json={"outcome": "unanswered"})
    assert r.status == 200
    assert await fetch(app, "SELECT call_id, note FROM faq_gaps") == [("gap", None)]
    await client.post("/api/records/contacts/gap/consent", json={"answer": "no"}, headers=OP)
    r = await client.patch("/api/records/contacts/gap", headers=OP, json={"outcome": "unanswered", "gap_note": "x"})
    assert r.status == 409 and (await r.json())["error"]["code"] == "consent_refused"


async def test_refused_list_attempts_are_audited(env: Any) -> None:
    client, _, app = env
    sv = who("sv1", "supervisor")
    for path, headers in (("/api/records/callbacks", OP), ("/api/records/callbacks", sv),
                          ("/api/records/faq-gaps", OP), ("/api/records/faq-gaps", ZEIMU)):
        assert (await client.get(path, headers=headers)).status == 403
    assert await fetch(app, "SELECT actor, action, record_type, outcome FROM audit ORDER BY seq") == [
        ("op1", "list", "callback", "denied"), ("sv1", "list", "callback", "denied"),
        ("op1", "list", "faq_gap", "denied"), ("tax1", "list", "faq_gap", "denied")]


async def test_an_operator_reads_a_call_only_while_it_is_theirs_and_open(env: Any) -> None:
    client, clock, app = env
    app[CALL_FEED].seats.take("op1", SEAT)
    await feed(app, answered("first"))
    assert (await client.get("/api/records/contacts/first", headers=OP)).status == 200  # live
    await feed(app, [hung_up("first")])
    assert (await client.get("/api/records/contacts/first", headers=OP)).status == 200  # after-call work
    await feed(app, answered("second"))  # the next call: the first one's after-call work is over
    r = await client.get("/api/records/contacts/first", headers=OP)
    assert r.status == 403
    error = (await r.json())["error"]
    assert error["code"] == "call_closed" and "後処理中" in error["message"]
    await feed(app, [hung_up("second")])
    clock.at += timedelta(minutes=31)  # records.after_call_minutes = 30
    assert (await client.get("/api/records/contacts/second", headers=OP)).status == 403
    assert (await client.get("/api/records/contacts/second", headers=who("ad1", "admin"))).status == 200


# ---- backups and exports ---------------------------------------------------------------------------


async def service_on(path: Path | str, key: str | None = None, **settings: Any) -> tuple[Database, RecordsService]:
    db = await open_store(path, migrations())
    records = RecordsSettings(audit_key=key, **settings)
    return db, RecordsService(db, records, Calendars.from_settings(CalendarSettings()), lambda: FRIDAY_EVENING)


async def test_backups_are_private_and_removed_after_the_keep_period(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        db, service = await service_on(tmp_path / "cti.sqlite3", backup_keep_days=30)
        await service.call_taken("b1", "op1", caller_number="0312345678")
        backups = tmp_path / "backups"
        fresh = new_backup_path(backups, FRIDAY_EVENING)
        backup(tmp_path / "cti.sqlite3", fresh)
        stale = new_backup_path(backups, FRIDAY_EVENING - timedelta(days=40))
        backup(tmp_path / "cti.sqlite3", stale)
        old = time.mktime((FRIDAY_EVENING - timedelta(days=31)).timetuple())
        os.utime(stale, (old, old))
        foreign = backups / "notes.txt"
        foreign.write_text("not ours")
        os.utime(foreign, (old, old))
        assert fresh.stat().st_mode & 0o777 == 0o600 and stale.stat().st_mode & 0o777 == 0o600
        await periodic.daily(service, backups)  # the daily retention task
        assert sorted(p.name for p in backups.iterdir()) == sorted([fresh.name, "notes.txt"])
        out = tmp_path / "export"
        await export(service, out, Principal("ad1", Role.ADMIN, None, "-"))
        assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {
            name: 0o600 for name in [*(f"{t}.jsonl" for t in ("contacts", "consents", "callbacks", "attempts",
                                                               "faq_gaps", "audit")), "manifest.json"]}
        assert out.stat().st_mode & 0o777 == 0o700
        await db.close()
    finally:
        os.umask(old_umask)


def test_backup_keep_days_may_not_exceed_retention() -> None:
    with pytest.raises(ValueError, match="backup_keep_days"):
        RecordsSettings(retention_days=30, backup_keep_days=60)


# ---- the audit chain: keyed, and anchored outside the database -------------------------------------


async def audited(path: Path | str, key: str | None) -> tuple[Database, RecordsService]:
    db, service = await service_on(path, key)
    op = Principal("op1", Role.OPERATOR, None, "10.0.0.5")
    for i in range(3):
        await service.call_taken(f"a{i}", "op1", caller_number="0312345678")
        await service.record_consent(op, f"a{i}", ConsentIn(answer="yes"))
    return db, service


def rewrite_whole_chain(path: Path | str, actor: str) -> None:
    """What someone with only the file (or the database login) can do: edit a row and recompute every hash."""
    from records.audit import GENESIS, row_hash

    with raw_store(path) as raw:
        prev = GENESIS
        for row in raw("SELECT * FROM audit ORDER BY seq"):
            row["actor"] = actor if row["seq"] == 2 else row["actor"]
            digest = row_hash(prev, row)
            raw("UPDATE audit SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (row["actor"], prev, digest, row["seq"]))
            prev = digest


async def test_a_rewritten_chain_does_not_verify_with_the_key(store_target: str) -> None:
    path = store_target
    db, _ = await audited(path, KEY)
    assert (await verify_audit(db, KEY.encode()))[1] == []
    await db.close()
    rewrite_whole_chain(path, "nobody")
    db = await open_store(path, migrations())
    problems = (await verify_audit(db, KEY.encode()))[1]
    assert {p.kind for p in problems} == {"edited"} and len(problems) == 6  # every row of the rebuilt chain
    assert (await verify_audit(db, None))[1] == []  # (without the key the forgery would pass)
    await db.close()


async def test_a_deleted_tail_with_a_lowered_counter_is_caught_by_the_anchor(
    store_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = store_target
    db, service = await audited(path, KEY)
    caplog.set_level(logging.INFO, logger="records")
    await periodic.log_anchor(service)  # daily: the head goes to the log, outside the database
    [record] = [r for r in caplog.records if r.getMessage() == "audit_anchor"]
    anchor = await db.read(head)
    assert anchor is not None and anchor.seq == 6
    logged = JsonLineFormatter().format(record)
    assert json.loads(logged)["seq"] == anchor.seq and json.loads(logged)["hash"] == anchor.hash
    assert "0312345678" not in logged
    await db.close()
    with raw_store(path) as raw:
        raw("DELETE FROM audit WHERE seq > 4")
        raw("UPDATE sqlite_sequence SET seq = 4 WHERE name = 'audit'")
    db = await open_store(path, migrations())
    assert (await verify_audit(db, KEY.encode()))[1] == []  # the shortened chain is consistent in itself...
    problems = (await verify_audit(db, KEY.encode(), anchor))[1]
    assert [(p.seq, p.kind) for p in problems] == [(6, "anchor_missing")]  # ...but the anchor is gone
    await db.close()


def test_cli_verify_with_anchor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from cti.cli import main

    path = tmp_path / "cti.sqlite3"
    key_file = tmp_path / "audit-key"
    key_file.write_text(KEY + "\n")
    config = tmp_path / "cti.toml"
    config.write_text(f'[store]\npath = "{path}"\n', encoding="utf-8")
    monkeypatch.setenv("CTI_CONFIG", str(config))
    monkeypatch.setenv("CTI_RECORDS__AUDIT_KEY_FILE", str(key_file))

    async def make() -> Anchor:
        db, _ = await audited(path, KEY)
        anchor = await db.read(head)
        await db.close()
        assert anchor is not None
        return anchor

    anchor = asyncio.run(make())
    assert main(["audit", "verify", "--anchor", str(anchor)]) == 0
    assert "HMAC-keyed" in capsys.readouterr().out
    rewrite_whole_chain(path, "nobody")
    assert main(["audit", "verify", "--anchor", str(anchor)]) == 1
    out = capsys.readouterr().out
    assert "edited" in out and "anchor_mismatch" in out
    assert main(["audit", "verify", "--anchor", "12:nothex"]) == 2
    assert parse_anchor(str(anchor)) == anchor


def test_the_tokyo_clock_is_used_for_backup_names() -> None:
    assert new_backup_path(Path("/x"), FRIDAY_EVENING.astimezone(TOKYO)).name == "cti-backup-20261204-190000.sqlite3"
