"""Records service over a real store, the real calendar and an injected clock.

Every test runs on both engines (a temp SQLite file, a PostgreSQL schema: tests/pg_support.py) except
those about SQLite's files (bytes left after wipe, the online backup, a crash of the process), marked
SQLITE_FILES or not taking the ``service`` fixture."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from raw_store import raw_store

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.gateway import Database
from cti.store_backend import open_store
from records import backups as retention
from records.models import AttemptIn, CallbackIn, CloseIn, ConsentIn, ContactUpdate
from records.retention import export, purge, verify_audit, wipe
from records.rules import RecordsError
from records.schema import MIGRATIONS, migrations
from records.service import RecordsService
from records.settings import RecordsSettings

OPERATOR = Principal("op1", Role.OPERATOR, None, "10.0.0.5")
OPERATOR2 = Principal("op2", Role.OPERATOR, None, "10.0.0.6")
SUPERVISOR = Principal("sv1", Role.SUPERVISOR, None, "10.0.0.7")
ZEIMU = Principal("tax1", Role.DEPARTMENT, "zeimu", "10.1.0.1")
ZEIMU2 = Principal("tax2", Role.DEPARTMENT, "zeimu", "10.1.0.2")
KOSEKI = Principal("reg1", Role.DEPARTMENT, "koseki", "10.1.0.3")
KUSEI = Principal("pi1", Role.DEPARTMENT, "kuseijoho", "10.1.0.4")

# Friday 2026-12-04 19:00: office closed; next opening Monday 2026-12-07 08:30.
FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
MONDAY_OPENING = datetime(2026, 12, 7, 8, 30, tzinfo=TOKYO)

NAME = "山田花子"
PHONE_RAW = "０９０－１２３４－５６７８"
PHONE = "09012345678"
QUESTION = "粗大ごみの収集日について教えてほしいです（ベランダの物干し台）"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY_EVENING)


SQLITE_FILES = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
async def db_path(store_target: str, backend: str) -> Path:
    assert backend == "sqlite", "db_path is SQLite's file: mark the test SQLITE_FILES"
    return Path(store_target)


@pytest.fixture
async def service(store_target: str, clock: Clock) -> AsyncIterator[RecordsService]:
    db = await open_store(store_target, migrations())
    settings = RecordsSettings(max_question_chars=200)
    svc = RecordsService(db, settings, Calendars.from_settings(CalendarSettings()), clock)
    try:
        yield svc
    finally:
        await db.close()


def callback_in(**over: Any) -> CallbackIn:
    base: dict[str, Any] = {"name": NAME, "furigana": "やまだはなこ", "phone": PHONE_RAW, "question": QUESTION,
                            "department": "zeimu"}
    base.update(over)
    return CallbackIn(**base)


async def new_call(service: RecordsService, call_id: str = "1733300000.1", consent: str | None = "yes",
                   who: Principal = OPERATOR, caller: str | None = "0312345678") -> str:
    await service.call_taken(call_id, who.user_id, caller_number=caller, ivr_category="gomi")
    if consent:
        await service.record_consent(who, call_id, ConsentIn(answer=consent))  # type: ignore[arg-type]
    return call_id


async def table_counts(db: Database) -> dict[str, int]:
    tables = ("contacts", "consents", "callbacks", "attempts", "faq_gaps", "audit")
    return await db.read(lambda c: {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables})


async def fetch(service: RecordsService, sql: str) -> list[tuple[Any, ...]]:
    return await service.db.read(lambda c: [tuple(r) for r in c.execute(sql).fetchall()])


async def test_given_consent_when_callback_taken_at_night_then_handover_is_next_office_morning(
    service: RecordsService, clock: Clock
) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    assert cb["phone"] == PHONE
    assert cb["status"] == "received"
    assert cb["handover_date"] == date(2026, 12, 7)
    assert cb["version"] == 1

    clock.at = MONDAY_OPENING - timedelta(minutes=1)
    assert await service.hand_over_due() == []
    clock.at = MONDAY_OPENING
    assert await service.hand_over_due() == [cb["id"]]
    assert await service.hand_over_due() == []  # only once

    listed = await service.list_callbacks(ZEIMU)
    assert [c["id"] for c in listed] == [cb["id"]]
    assert [c["id"] for c in await service.list_callbacks(KUSEI)] == [cb["id"]]
    assert await service.list_callbacks(KOSEKI) == []
    contact = (await service.get_call(OPERATOR, call))["contact"]
    assert contact["outcome"] == "callback_requested"


async def test_department_does_not_see_a_record_before_handover(service: RecordsService) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    assert await service.list_callbacks(ZEIMU) == []
    with pytest.raises(RecordsError) as err:
        await service.get_callback(ZEIMU, cb["id"])
    # not yet handed over: the same 404 as a record that does not exist (the status reveals nothing)
    assert err.value.status == 404
    with pytest.raises(RecordsError) as missing:
        await service.get_callback(ZEIMU, cb["id"] + 1000)
    assert (missing.value.status, missing.value.code) == (404, err.value.code)
    assert len(await service.list_callbacks(KUSEI)) == 1  # 区政情報課 sees everything


async def test_refused_consent_saves_no_personal_data(service: RecordsService) -> None:
    call = await new_call(service, consent="no")
    before = await table_counts(service.db)
    with pytest.raises(RecordsError) as err:
        await service.create_callback(OPERATOR, call, callback_in())
    assert (err.value.status, err.value.code) == (409, "consent_refused")
    assert await table_counts(service.db) == before
    records = await service.get_call(OPERATOR, call)
    assert records["consents"][0]["answer"] == "no"
    assert records["consents"][0]["script_id"] == "callback-consent"
    assert records["contact"]["outcome"] == "declined"


@pytest.mark.parametrize(
    ("over", "code", "field"),
    [
        ({"phone": "03-1234-567"}, "invalid_phone", "phone"),
        ({"phone": "0120-123-456"}, "invalid_phone", "phone"),
        ({"name": "  "}, "missing_field", "name"),
        ({"department": "nasa"}, "unknown_department", "department"),
        ({"question": "あ" * 201}, "too_long", "question"),
        ({"address": "東京都中央区1-1"}, "reason_required", "address_reason"),
        ({"email": "a@example.jp"}, "reason_required", "email_reason"),
        ({"fax": "03-1234-5678"}, "reason_required", "fax_reason"),
        ({"email": "not-mail", "email_reason": "資料送付のため"}, "invalid_email", "email"),
    ],
)
async def test_bad_callback_input_is_refused_and_nothing_is_saved(
    service: RecordsService, over: dict[str, Any], code: str, field: str
) -> None:
    call = await new_call(service)
    before = await table_counts(service.db)
    with pytest.raises(RecordsError) as err:
        await service.create_callback(OPERATOR, call, callback_in(**over))
    assert (err.value.code, err.value.field) == (code, field)
    assert err.value.status == 422
    assert await table_counts(service.db) == before


async def test_missing_consent_and_unknown_call_are_refused(service: RecordsService) -> None:
    call = await new_call(service, consent=None)
    before = await table_counts(service.db)
    with pytest.raises(RecordsError) as err:
        await service.create_callback(OPERATOR, call, callback_in())
    assert err.value.code == "consent_missing"
    with pytest.raises(RecordsError) as err:
        await service.create_callback(OPERATOR, "no-such-call", callback_in())
    assert (err.value.status, err.value.code) == (404, "unknown_call")
    with pytest.raises(RecordsError) as err:
        await service.record_consent(OPERATOR, "no-such-call", ConsentIn(answer="yes"))
    assert err.value.code == "unknown_call"
    assert await table_counts(service.db) == before


async def test_office_open_needs_supervisor_override_with_reason(service: RecordsService, clock: Clock) -> None:
    clock.at = datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO)  # Friday, office open
    call = await new_call(service)
    with pytest.raises(RecordsError) as err:
        await service.create_callback(OPERATOR, call, callback_in())
    assert err.value.code == "office_open"
    call2 = await new_call(service, "sv-call", who=SUPERVISOR)
    with pytest.raises(RecordsError) as err:
        await service.create_callback(SUPERVISOR, call2, callback_in())
    assert err.value.field == "override_reason"
    cb = await service.create_callback(SUPERVISOR, call2, callback_in(override_reason="担当課が全員不在のため"))
    assert cb["handover_date"] == date(2026, 12, 4)
    assert await service.hand_over_due() == [cb["id"]]  # due at once: the office is open


async def test_status_machine_attempts_and_close(service: RecordsService, clock: Clock) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    clock.at = MONDAY_OPENING
    await service.hand_over_due()
    cb = await service.get_callback(ZEIMU, cb["id"])
    with pytest.raises(RecordsError) as err:
        await service.close(ZEIMU, cb["id"], CloseIn(version=cb["version"], summary="回答済み"))
    assert (err.value.status, err.value.code) == (409, "invalid_transition")
    assert "引き継ぎ済み" in err.value.message
    cb = await service.start(ZEIMU, cb["id"], cb["version"])
    assert cb["status"] == "in_progress"
    cb = await service.attempt(ZEIMU, cb["id"], AttemptIn(version=cb["version"], outcome="not_reached"))
    cb = await service.attempt(ZEIMU, cb["id"], AttemptIn(version=cb["version"], outcome="reached"))
    cb = await service.close(ZEIMU, cb["id"], CloseIn(version=cb["version"], summary="収集日を案内した"))
    assert cb["status"] == "closed"
    assert [a["outcome"] for a in cb["attempts"]] == ["not_reached", "reached"]
    assert cb["answer_summary"] == "収集日を案内した"


async def test_three_failed_attempts_close_unreached(service: RecordsService, clock: Clock) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    clock.at = MONDAY_OPENING
    await service.hand_over_due()
    cb = await service.start(ZEIMU, cb["id"], 2)
    for _ in range(3):
        cb = await service.attempt(ZEIMU, cb["id"], AttemptIn(version=cb["version"], outcome="not_reached"))
    assert cb["status"] == "closed_unreached"
    with pytest.raises(RecordsError) as err:
        await service.attempt(ZEIMU, cb["id"], AttemptIn(version=cb["version"], outcome="not_reached"))
    assert err.value.code == "invalid_transition"


async def test_optimistic_lock_one_wins_other_gets_409(service: RecordsService, clock: Clock) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    clock.at = MONDAY_OPENING
    await service.hand_over_due()
    read_by_both = (await service.get_callback(ZEIMU, cb["id"]))["version"]
    await service.start(ZEIMU, cb["id"], read_by_both)
    with pytest.raises(RecordsError) as err:
        await service.start(ZEIMU2, cb["id"], read_by_both)
    assert (err.value.status, err.value.code, err.value.field) == (409, "version_conflict", "version")


async def test_overdue_after_handover_day_close(service: RecordsService, clock: Clock) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    clock.at = MONDAY_OPENING
    await service.hand_over_due()
    assert (await service.get_callback(ZEIMU, cb["id"]))["overdue"] is False
    clock.at = datetime(2026, 12, 7, 17, 16, tzinfo=TOKYO)
    assert (await service.get_callback(ZEIMU, cb["id"]))["overdue"] is True
    assert [c["id"] for c in await service.list_callbacks(KUSEI, overdue=True)] == [cb["id"]]


async def test_foreign_department_read_is_refused_and_audited(service: RecordsService, clock: Clock) -> None:
    call = await new_call(service)
    cb = await service.create_callback(OPERATOR, call, callback_in())
    clock.at = MONDAY_OPENING
    await service.hand_over_due()
    with pytest.raises(RecordsError) as err:
        await service.get_callback(KOSEKI, cb["id"])
    assert err.value.status == 404  # outside one's scope answers like a missing record, audited as denied
    row = (await fetch(service, "SELECT actor, role, department, client_ip, outcome, record_id FROM audit"
                                " WHERE action = 'read' ORDER BY seq DESC LIMIT 1"))[0]
    assert tuple(row) == ("reg1", "department", "koseki", "10.1.0.3", "denied", str(cb["id"]))


async def test_operator_sees_only_own_call(service: RecordsService) -> None:
    call = await new_call(service)
    await service.create_callback(OPERATOR, call, callback_in())
    assert len((await service.get_call(OPERATOR, call))["callbacks"]) == 1
    with pytest.raises(RecordsError) as err:
        await service.get_call(OPERATOR2, call)
    assert err.value.status == 404
    with pytest.raises(RecordsError) as err:
        await service.list_callbacks(OPERATOR)
    assert err.value.status == 403
    with pytest.raises(RecordsError) as err:
        await service.create_callback(OPERATOR2, call, callback_in())
    assert err.value.status == 404


async def test_caller_history_and_open_callbacks(service: RecordsService, clock: Clock) -> None:
    await new_call(service, "c1", caller="03-1234-5678")
    await service.update_contact(OPERATOR, "c1", ContactUpdate(outcome="resolved", faq_entries=["faq-12"]))
    clock.at += timedelta(minutes=10)
    call = await new_call(service, "c2", caller="0312345678")
    cb = await service.create_callback(OPERATOR, call, callback_in())
    for ended in ("c1", "c2"):
        await service.call_ended(ended)
    history = await service.caller_history("０３－１２３４－５６７８")
    assert [(h["call_id"], h["outcome"], h["category"]) for h in history] == [
        ("c2", "callback_requested", "gomi"), ("c1", "resolved", "gomi")]
    assert "caller_number" not in history[0]
    open_cbs = await service.open_callbacks_for("0312345678")
    assert [(o["id"], o["department"], o["status"]) for o in open_cbs] == [(cb["id"], "zeimu", "received")]
    assert await service.caller_history("0399999999") == []


async def test_unanswered_call_makes_faq_gap(service: RecordsService) -> None:
    await new_call(service, "gap", consent="yes")
    await service.update_contact(OPERATOR, "gap", ContactUpdate(outcome="unanswered", faq_entries=["faq-3"],
                                                                gap_note="犬の登録の質問"))
    rows = await fetch(service, "SELECT call_id, ivr_category, faq_entries, note FROM faq_gaps")
    assert rows == [("gap", "gomi", json.dumps(["faq-3"]), "犬の登録の質問")]
    with pytest.raises(RecordsError) as err:
        await service.update_contact(OPERATOR, "gap", ContactUpdate(outcome="transferred"))
    assert err.value.field == "transfer_department"


async def test_audit_is_append_only_and_chained(service: RecordsService) -> None:
    call = await new_call(service)
    await service.create_callback(OPERATOR, call, callback_in())
    count, problems = await verify_audit(service.db)
    assert count == 3 and problems == []
    for sql in ("UPDATE audit SET actor = 'x' WHERE seq = 1", "DELETE FROM audit WHERE seq = 1"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await service.db.write(lambda c, sql=sql: c.execute(sql))


def tamper(store_target: str, *sql: str) -> None:
    """What someone with the database's own credentials could do: drop the guard, rewrite rows."""
    with raw_store(store_target) as raw:
        for statement in sql:
            raw(statement)


async def _audited_db(service: RecordsService) -> None:
    for i in range(3):
        call = await new_call(service, f"call-{i}")
        await service.create_callback(OPERATOR, call, callback_in())
    count, problems = await verify_audit(service.db)
    assert (count, problems) == (9, [])


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (("UPDATE audit SET client_ip = '1.2.3.4' WHERE seq = 4",), {(4, "edited")}),
        (("DELETE FROM audit WHERE seq = 5",), {(6, "missing_before"), (6, "broken_link")}),
        (("DELETE FROM audit WHERE seq = 9",), {(9, "tail_deleted")}),
        (
            ("UPDATE audit SET seq = 100 WHERE seq = 3", "UPDATE audit SET seq = 3 WHERE seq = 4",
             "UPDATE audit SET seq = 4 WHERE seq = 100"),
            {(3, "broken_link"), (4, "broken_link"), (5, "broken_link")},
        ),
    ],
    ids=["edited", "deleted", "tail-deleted", "reordered"],
)
async def test_audit_verify_names_tampered_rows(
    service: RecordsService, store_target: str, sql: tuple[str, ...], expected: set[tuple[int, str]]
) -> None:
    await _audited_db(service)
    tamper(store_target, *sql)
    _, problems = await verify_audit(service.db)
    assert {(p.seq, p.kind) for p in problems} == expected


async def test_old_v1_database_upgrades(store_target: str) -> None:
    path = store_target
    old = await open_store(path, {"records": MIGRATIONS[:1]})
    await old.write(lambda c: c.execute("INSERT INTO contacts(call_id, operator, started_at) VALUES ('old-call',"
                                        " 'op1', '2026-01-05T10:00:00.000000+09:00')"))
    await old.close()
    db = await open_store(path, migrations())
    try:
        version = await db.read(lambda c: c.execute(
            "SELECT version FROM schema_versions WHERE component = 'records'").fetchone())
        assert tuple(version or ()) == (len(MIGRATIONS),)
        assert await db.read(lambda c: [r[0] for r in c.execute("SELECT call_id FROM contacts")]) == ["old-call"]
        await db.write(lambda c: c.execute("INSERT INTO faq_gaps(call_id, created_at) VALUES ('old-call', 'x')"))
    finally:
        await db.close()


def file_bytes(db_path: Path) -> bytes:
    data = db_path.read_bytes()
    wal = Path(f"{db_path}-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


async def test_purge_removes_personal_bytes_after_one_year(service: RecordsService, clock: Clock,
                                                           store_target: str, backend: str) -> None:
    """On SQLite the purged bytes also leave the files; on PostgreSQL the rows (its files: deployment guide)."""
    sqlite = backend == "sqlite"

    def in_files(needle: str) -> bool:
        return needle.encode() in file_bytes(Path(store_target))

    old_name, old_q = "佐藤一郎", "古い質問：犬の登録はどこでできますか"
    call = await new_call(service, "old", caller="0311112222")
    await service.create_callback(OPERATOR, call, callback_in(name=old_name, question=old_q,
                                                              phone="080-2222-3333"))
    await new_call(service, "oldgap", consent="yes", caller=None)
    await service.update_contact(OPERATOR, "oldgap",
                                 ContactUpdate(outcome="unanswered", gap_note="古いメモ：猫の避妊手術"))
    clock.at = FRIDAY_EVENING + timedelta(days=10)
    call = await new_call(service, "new", caller="0344445555")
    await service.create_callback(OPERATOR, call, callback_in())
    for needle in (old_name, old_q, "08022223333", "0311112222", "猫の避妊手術"):
        assert not sqlite or in_files(needle)

    clock.at = FRIDAY_EVENING + timedelta(days=365) - timedelta(seconds=1)
    dry = await purge(service, dry_run=True)
    assert dry.rows == {"contacts": 0, "callbacks": 0, "faq_gaps": 0}
    clock.at = FRIDAY_EVENING + timedelta(days=365)
    dry = await purge(service, dry_run=True)
    assert dry.rows == {"contacts": 1, "callbacks": 1, "faq_gaps": 1}
    assert not sqlite or in_files(old_name)  # dry run changed nothing
    result = await purge(service)
    assert result.rows == {"contacts": 1, "callbacks": 1, "faq_gaps": 1}
    assert result.checkpoint is not None and result.checkpoint[0] == 0

    blob = file_bytes(Path(store_target)) if sqlite else b""
    for needle in (old_name, old_q, "08022223333", "0311112222", "猫の避妊手術"):
        assert needle.encode() not in blob, needle
    for needle in (NAME, QUESTION, PHONE):  # the newer record stays
        assert not sqlite or needle.encode() in blob
    assert await fetch(service, "SELECT count(*) FROM callbacks WHERE name IS NOT NULL") == [(1,)]
    assert (await fetch(service, "SELECT department, status, name, phone, question, handover_date FROM callbacks"
                              " WHERE call_id = 'old'"))[0] == ("zeimu", "received", None, None, None, "2026-12-07")
    assert (await fetch(service, "SELECT outcome, caller_number FROM contacts WHERE call_id = 'old'"))[0] == (
        "callback_requested", None)
    detail = (await fetch(service, "SELECT detail FROM audit WHERE action = 'purge'"))[0][0]
    assert old_name not in detail and "0311112222" not in detail
    assert (await verify_audit(service.db))[1] == []


@SQLITE_FILES
async def test_export_then_wipe(service: RecordsService, db_path: Path, tmp_path: Path) -> None:
    call = await new_call(service)
    await service.create_callback(OPERATOR, call, callback_in())
    out = tmp_path / "export"
    manifest = await export(service, out, KUSEI)
    assert manifest["files"]["callbacks.jsonl"]["rows"] == 1
    lines = (out / "callbacks.jsonl").read_text("utf-8").splitlines()
    assert json.loads(lines[0])["name"] == NAME
    import hashlib
    for name, info in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == info["sha256"]
    assert json.loads((out / "manifest.json").read_text("utf-8")) == manifest
    with pytest.raises(FileExistsError):
        await export(service, out, KUSEI)

    report = await wipe(service, db_path, KUSEI)
    assert report["ok"] is True
    assert report["remaining_personal_values"] == {"contacts": 0, "callbacks": 0, "faq_gaps": 0}
    assert report["probed_values"] >= 3
    blob = file_bytes(db_path)
    for needle in (NAME, QUESTION, PHONE):
        assert needle.encode() not in blob
    actions = [r[0] for r in await fetch(service, "SELECT action FROM audit ORDER BY seq")]
    assert actions[-2:] == ["export", "wipe"]


@SQLITE_FILES
async def test_backup_is_a_consistent_copy(service: RecordsService, db_path: Path, tmp_path: Path) -> None:
    call = await new_call(service)
    await service.create_callback(OPERATOR, call, callback_in())
    dest = tmp_path / "b" / "backup.sqlite3"
    pages = retention.backup(db_path, dest)
    assert pages > 0
    copy = sqlite3.connect(dest)
    assert copy.execute("SELECT name FROM callbacks").fetchall() == [(NAME,)]
    copy.close()
    with pytest.raises(FileExistsError):
        retention.backup(db_path, dest)


async def test_group_commit_isolates_failing_units_and_keeps_the_chain(service: RecordsService) -> None:
    import asyncio

    for i in range(40):
        await new_call(service, f"g{i}", consent="yes" if i % 4 else "no")
    results = await asyncio.gather(
        *(service.create_callback(OPERATOR, f"g{i}", callback_in(name=f"名前{i}")) for i in range(40)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, RecordsError)]
    assert len(ok) == 30 and len(refused) == 10
    assert {r.code for r in refused} == {"consent_refused"}
    stored = {r[0] for r in await fetch(service, "SELECT call_id FROM callbacks ORDER BY id")}
    assert stored == {f"g{i}" for i in range(40) if i % 4}
    assert not await service.db.read(lambda c: c.in_transaction)
    assert (await verify_audit(service.db))[1] == []


async def test_cancelled_callers_leave_no_open_transaction(service: RecordsService) -> None:
    import asyncio

    for i in range(20):
        await new_call(service, f"k{i}")
    tasks = [asyncio.create_task(service.create_callback(OPERATOR, f"k{i}", callback_in())) for i in range(20)]
    await asyncio.sleep(0)
    for task in tasks[5::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await service.db.maintenance(lambda c: None)  # every queued unit has committed
    assert not await service.db.read(lambda c: c.in_transaction)
    call = await new_call(service, "after")
    assert (await service.create_callback(OPERATOR, call, callback_in()))["status"] == "received"
    assert (await verify_audit(service.db))[1] == []


CRASH_SCRIPT = """
import asyncio, os, sys
from datetime import datetime
from cti.calendar.rules import Calendars
from cti.core.clock import TOKYO
from cti.config import CalendarSettings
from cti.gateway import Database
from cti.core.principal import Principal, Role
from records.models import CallbackIn, ConsentIn
from records.schema import migrations
from records.settings import RecordsSettings
from records.service import RecordsService

async def main():
    db = await Database.open(sys.argv[1], migrations())
    op = Principal("op1", Role.OPERATOR, None, "10.0.0.5")
    svc = RecordsService(db, RecordsSettings(), Calendars.from_settings(CalendarSettings()),
                         lambda: datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO))
    await svc.call_taken("crash", "op1")
    await svc.record_consent(op, "crash", ConsentIn(answer="yes"))
    cb = await svc.create_callback(op, "crash", CallbackIn(name="耐久太郎", phone="0312345678",
                                                           question="q", department="zeimu"))
    print(cb["id"], flush=True)
    os._exit(0)  # no close, no checkpoint: a crash right after the acknowledgement

asyncio.run(main())
"""


def test_acknowledged_callback_survives_a_crash(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "crash.sqlite3"
    done = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    acknowledged = int(done.stdout.strip())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT id, name FROM callbacks").fetchall() == [(acknowledged, "耐久太郎")]
    conn.close()


async def test_call_taken_creates_the_contact_once(service: RecordsService) -> None:
    assert await service.call_taken("t1", "op1", caller_number="+81-3-1234-5678", ivr_category="zei") is True
    assert await service.call_taken("t1", "op1") is False
    await service.record_consent(OPERATOR, "t1", ConsentIn(answer="yes"))
    cb = await service.create_callback(OPERATOR, "t1", callback_in())
    await service.call_ended("t1")
    assert [h["call_id"] for h in await service.caller_history("0312345678")] == ["t1"]
    assert [o["id"] for o in await service.open_callbacks_for("03-1234-5678")] == [cb["id"]]
    assert (await fetch(service, "SELECT actor, action, record_id FROM audit ORDER BY seq LIMIT 1"))[0] == (
        "system", "create", "t1")


async def test_logs_carry_no_personal_data(service: RecordsService, clock: Clock,
                                           caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from cti.core.logs import JsonLineFormatter

    caplog.set_level(logging.DEBUG)
    call = await new_call(service, caller="0312345678")
    cb = await service.create_callback(OPERATOR, call, callback_in(address="中央区日本橋1-1", address_reason="郵送"))
    with pytest.raises(RecordsError):
        await service.create_callback(OPERATOR, call, callback_in(phone="0120-000-000"))
    clock.at = MONDAY_OPENING
    await service.hand_over_due()
    await service.start(ZEIMU, cb["id"], 2)
    with pytest.raises(RecordsError):
        await service.get_callback(KOSEKI, cb["id"])
    clock.at = FRIDAY_EVENING + timedelta(days=366)
    await purge(service)
    formatter = JsonLineFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records if r.name.startswith("records"))
    assert "callback_created" in text and "records_purge" in text
    for secret in (NAME, PHONE, "0312345678", QUESTION, "日本橋", "やまだ"):
        assert secret not in text
