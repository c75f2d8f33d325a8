"""Two cti nodes on one PostgreSQL: one audit chain, run-once jobs once, leases that survive kill -9,
calendars that follow each other, a call log both nodes write without duplicates.

Each "node" is what a cti process holds: its own gateway (its own connection and thread), its own
records service, its own leases connection. The kill -9 test runs the leading node as a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pg_support import PgCluster

from cti import keys
from cti.calendar.rules import Calendars, Override, Which
from cti.cluster import sync_calendar
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.gateway import Database
from cti.pg_leases import PgLeases
from cti.store_backend import open_store
from records.models import CallbackIn, ConsentIn
from records.retention import verify_audit
from records.schema import migrations as records_migrations
from records.service import RecordsService
from records.settings import RecordsSettings
from records.trail import AuditTrail
from supervision import service as supervision_service
from supervision.calendar_store import delete_override, insert_override, read_state, save_emergency
from supervision.call_log import write_entries

FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
MONDAY_OPENING = datetime(2026, 12, 7, 8, 30, tzinfo=TOKYO)
SUPERVISOR = Principal("sv1", Role.SUPERVISOR, None, "10.0.0.7")
TRAIL = AuditTrail(lambda: datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO))  # the one trail's writer (no key)
MIGRATIONS = {**records_migrations(), **supervision_service.migrations()}
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def two_nodes(pg_cluster: PgCluster) -> AsyncIterator[tuple[Database, Database]]:
    url = pg_cluster.new_url()
    a, b = await asyncio.gather(open_store(url, MIGRATIONS), open_store(url, MIGRATIONS))  # migrate once
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def service(db: Database, clock: Clock) -> RecordsService:
    return RecordsService(db, RecordsSettings(), Calendars.from_settings(CalendarSettings()), clock)


async def take_callbacks(svc: RecordsService, node: str, n: int) -> list[int]:
    ids = []
    for i in range(n):
        call = f"{node}-{i}"
        who = Principal(f"op-{node}", Role.OPERATOR, None, "10.0.0.5")
        await svc.call_taken(call, who.user_id, caller_number="0312345678", ivr_category="gomi")
        await svc.record_consent(who, call, ConsentIn(answer="yes"))
        cb = await svc.create_callback(who, call, CallbackIn(name="山田花子", phone="0312345678",
                                                             question="粗大ごみ", department="zeimu"))
        ids.append(int(cb["id"]))
    return ids


async def test_two_nodes_writing_at_once_keep_one_audit_chain_and_hand_over_once(
    two_nodes: tuple[Database, Database],
) -> None:
    clock = Clock(FRIDAY_EVENING)
    a, b = service(two_nodes[0], clock), service(two_nodes[1], clock)
    ids_a, ids_b = await asyncio.gather(take_callbacks(a, "a", 25), take_callbacks(b, "b", 25))
    assert len(set(ids_a) | set(ids_b)) == 50
    count, problems = await verify_audit(two_nodes[0])
    assert problems == [] and count == 150  # contact + consent + callback per call, one chain
    clock.at = MONDAY_OPENING
    handed_a, handed_b = await asyncio.gather(a.hand_over_due(), b.hand_over_due())
    assert sorted(handed_a + handed_b) == sorted(ids_a + ids_b)  # every record once, by one node or the other
    assert await asyncio.gather(a.hand_over_due(), b.hand_over_due()) == [[], []]
    assert (await verify_audit(two_nodes[1]))[1] == []


async def test_the_call_log_written_by_both_nodes_has_one_row_per_call(two_nodes: tuple[Database, Database]) -> None:
    at = FRIDAY_EVENING
    events = [("arrived", "c1", {"at": at, "after_hours": True}),
              ("routed", "c1", {"at": at, "closed": True, "category": "gomi"}),
              ("answered", "c1", {"at": at + timedelta(seconds=5), "operator": "op1"}),
              ("ended", "c1", {"at": at + timedelta(seconds=65), "abandoned": False})]
    await asyncio.gather(*(db.write(lambda c, e=e: write_entries(c, [e])) for e in events for db in two_nodes))
    rows = await two_nodes[0].read(lambda c: [tuple(r) for r in c.execute(
        "SELECT call_id, category, answered_at IS NOT NULL, ended_at IS NOT NULL, abandoned, after_hours, operator"
        " FROM call_log")])
    assert rows == [("c1", "gomi", True, True, 0, 1, "op1")]


async def test_a_calendar_change_on_one_node_reaches_the_other(two_nodes: tuple[Database, Database]) -> None:
    first, second = Calendars.from_settings(CalendarSettings()), Calendars.from_settings(CalendarSettings())
    friday_10 = datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO)
    await two_nodes[0].write(lambda c: save_emergency(c, TRAIL, SUPERVISOR, "台風のため", False, friday_10))
    first.set_emergency("台風のため")
    assert second.call_center(friday_10).open
    assert sync_calendar(second, await two_nodes[1].read(read_state)) is True
    assert not second.call_center(friday_10).open and second.emergency_reason == "台風のため"
    await two_nodes[0].write(lambda c: save_emergency(c, TRAIL, SUPERVISOR, None, True, friday_10))
    closure = Override(kind="closure", applies_to=Which("both"), start=friday_10, end=friday_10 + timedelta(hours=2),
                       reason="停電")
    stored = await two_nodes[0].write(lambda c: insert_override(c, TRAIL, SUPERVISOR, closure, friday_10))
    assert sync_calendar(second, await two_nodes[1].read(read_state)) is True
    assert second.emergency_reason is None and not second.call_center(friday_10).open  # the closure now
    assert second.call_center(friday_10 + timedelta(hours=3)).open
    await two_nodes[0].write(lambda c: delete_override(c, TRAIL, SUPERVISOR, stored, friday_10))
    assert sync_calendar(second, await two_nodes[1].read(read_state)) is True
    assert second.call_center(friday_10).open
    assert sync_calendar(second, await two_nodes[1].read(read_state)) is False  # nothing new


async def _lead_into(leases: PgLeases, job: str, log: list[str], name: str) -> None:
    async def leader() -> None:
        log.append(f"{name}:lead")
        await asyncio.Event().wait()

    async def standby() -> None:
        log.append(f"{name}:standby")
        await asyncio.Event().wait()

    await leases.lead(job, leader, standby)


async def test_one_node_leads_a_job_and_the_other_takes_over_when_it_stops(pg_cluster: PgCluster) -> None:
    url = pg_cluster.new_url()
    one = PgLeases(url, "one", retry_seconds=0.1, check_seconds=0.1)
    two = PgLeases(url, "two", retry_seconds=0.1, check_seconds=0.1)
    log: list[str] = []
    first = asyncio.create_task(_lead_into(one, "handover", log, "one"))
    await asyncio.sleep(0.3)
    second = asyncio.create_task(_lead_into(two, "handover", log, "two"))
    await asyncio.sleep(0.5)
    assert log == ["one:standby", "one:lead", "two:standby"]
    assert one.leading() == {"handover"} and two.leading() == set()
    first.cancel()  # node one shuts down: its lease goes with it
    await asyncio.gather(first, return_exceptions=True)
    await one.close()
    for _ in range(50):
        if two.leading():
            break
        await asyncio.sleep(0.1)
    assert two.leading() == {"handover"} and log[-1] == "two:lead"
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    await two.close()


LEADER_SCRIPT = """
import asyncio, sys
from cti.pg_leases import PgLeases

async def main():
    leases = PgLeases(sys.argv[1], "doomed", retry_seconds=0.1, check_seconds=0.1)
    async def leader():
        print("leading", flush=True)
        await asyncio.Event().wait()
    await leases.lead("purge", leader)

asyncio.run(main())
"""


async def test_a_leader_killed_with_sigkill_hands_its_job_over(pg_cluster: PgCluster) -> None:
    url = pg_cluster.new_url()
    doomed = await asyncio.create_subprocess_exec(sys.executable, "-c", LEADER_SCRIPT, url,
                                                  stdout=subprocess.PIPE, cwd=ROOT,
                                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert doomed.stdout is not None
        assert await asyncio.wait_for(doomed.stdout.readline(), 30) == b"leading\n"
        survivor = PgLeases(url, "survivor", retry_seconds=0.1, check_seconds=0.1)
        log: list[str] = []
        task = asyncio.create_task(_lead_into(survivor, "purge", log, "survivor"))
        await asyncio.sleep(0.5)
        assert log == ["survivor:standby"]  # the job is the other process's
        os.kill(doomed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        for _ in range(200):
            if survivor.leading():
                break
            await asyncio.sleep(0.05)
        assert survivor.leading() == {"purge"}
        assert time.monotonic() - killed_at < 5
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await survivor.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            doomed.kill()
        await doomed.wait()


async def test_the_gateway_reconnects_after_postgresql_dropped_its_connection(pg_cluster: PgCluster) -> None:
    """A PostgreSQL restart (or a promoted standby) must not leave a node failing every write until restarted."""
    import psycopg

    url = pg_cluster.new_url()
    db = await open_store(url, {"t": ["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"]})
    try:
        await db.write(lambda c: c.execute("INSERT INTO items(name) VALUES ('before')"))
        pid = await db.read(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
        with psycopg.connect(pg_cluster.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await db.write(lambda c: c.execute("INSERT INTO items(name) VALUES ('after')"))
        assert await db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM items ORDER BY id")]) == [
            "before", "after"]
        assert await db.read(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0]) != pid
    finally:
        await db.close()


async def test_a_click_retried_on_the_other_node_does_not_dial_twice(two_nodes: tuple[Database, Database]) -> None:
    from records import dial_claims

    a, b = two_nodes
    now = MONDAY_OPENING
    claims = await asyncio.gather(a.write(lambda c: dial_claims.claim(c, 7, "tax1", "node-a", now)),
                                  b.write(lambda c: dial_claims.claim(c, 7, "tax1", "node-b", now)))
    assert sorted(claims) == [False, True]  # clicked on both at once: one Originate
    winner, loser = ("node-a", "node-b") if claims[0] else ("node-b", "node-a")
    later = now + timedelta(seconds=10)
    assert await a.write(lambda c: dial_claims.claim(c, 7, "tax1", loser, later)) is False  # the retry
    assert await a.write(lambda c: dial_claims.claim(c, 7, "tax1", winner, later)) is True  # its own node: its call
    expired = later + timedelta(seconds=dial_claims.CLAIM_SECONDS)
    assert await b.write(lambda c: dial_claims.claim(c, 7, "tax1", loser, expired)) is True
    await b.write(lambda c: dial_claims.release(c, 7, loser))  # the Originate failed: free at once
    assert await a.write(lambda c: dial_claims.claim(c, 7, "tax1", winner, expired)) is True


WRITER_SCRIPT = """
import asyncio, sys
from datetime import datetime
from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.store_backend import open_store
from records.models import CallbackIn, ConsentIn
from records.schema import migrations
from records.service import RecordsService
from records.settings import RecordsSettings

async def main():
    db = await open_store(sys.argv[1], migrations())
    op = Principal("op-doomed", Role.OPERATOR, None, "10.0.0.5")
    svc = RecordsService(db, RecordsSettings(), Calendars.from_settings(CalendarSettings()),
                         lambda: datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO))

    async def one(i):
        call = f"doomed-{i}"
        await svc.call_taken(call, op.user_id, caller_number="0312345678")
        await svc.record_consent(op, call, ConsentIn(answer="yes"))
        cb = await svc.create_callback(op, call, CallbackIn(name="耐久太郎", phone="0312345678", question="q",
                                                            department="zeimu"))
        print(cb["id"], flush=True)  # acknowledged: what the browser would have been answered

    i = 0
    while True:  # 8 operators at once, until killed
        await asyncio.gather(*(one(i + k) for k in range(8)))
        i += 8

asyncio.run(main())
"""


async def test_a_node_killed_mid_writes_loses_no_acknowledged_record(pg_cluster: PgCluster) -> None:
    """kill -9 of a node while it acknowledges callback requests: every acknowledged one is in the
    store for the surviving node, the chain still verifies, and the survivor writes on."""
    url = pg_cluster.new_url()
    survivor_db = await open_store(url, MIGRATIONS)
    try:
        doomed = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER_SCRIPT, url,
                                                      stdout=subprocess.PIPE, cwd=ROOT,
                                                      env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert doomed.stdout is not None
        acknowledged: list[int] = []
        clock = Clock(FRIDAY_EVENING)
        survivor = service(survivor_db, clock)
        writing = asyncio.create_task(take_callbacks(survivor, "survivor", 20))
        while len(acknowledged) < 40:
            line = await asyncio.wait_for(doomed.stdout.readline(), 60)
            assert line, "the writer node died early"
            acknowledged.append(int(line))
        os.kill(doomed.pid, signal.SIGKILL)
        acknowledged += [int(x) for x in (await doomed.stdout.read()).split()]  # answered before the kill
        await doomed.wait()
        survivor_ids = await writing
        stored = set(await survivor_db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM callbacks")]))
        assert set(acknowledged) <= stored  # 0 acknowledged records lost
        assert set(survivor_ids) <= stored
        assert (await verify_audit(survivor_db))[1] == []
        more = await take_callbacks(survivor, "after", 3)  # the store goes on (no lock left behind)
        assert len(more) == 3 and (await verify_audit(survivor_db))[1] == []
    finally:
        await survivor_db.close()


async def test_two_apps_on_one_store_lead_each_job_once_and_follow_each_others_calendar(
    pg_cluster: PgCluster, tmp_path: Path,
) -> None:
    """create_app as `cti serve` builds it, twice, on one PostgreSQL: each run-once job has one leader,
    and an emergency close stored through node A closes node B's routing within seconds."""
    from aiohttp import web

    from cti.app import create_app
    from cti.config import Settings
    from cti.core.run_once import LEASES
    from supervision.calendar_store import save_emergency

    url = pg_cluster.new_url()
    friday_10 = datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO)
    runners = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        settings = Settings(store={"path": str(tmp_path / name / "cti.sqlite3"), "url": url},
                            ami={"enabled": False}, agi={"enabled": False})
        runner = web.AppRunner(create_app(settings, clock=lambda: friday_10))
        await runner.setup()  # every cleanup context started, as `cti serve` does
        runners.append(runner)
    try:
        a, b = (r.app for r in runners)
        for _ in range(100):
            if len(a[LEASES].leading()) + len(b[LEASES].leading()) == 2:
                break
            await asyncio.sleep(0.1)
        assert sorted([*a[LEASES].leading(), *b[LEASES].leading()]) == ["access-alerts", "records-periodic"]
        assert not a[LEASES].leading() & b[LEASES].leading()  # never both
        assert b[keys.CALENDARS].call_center(friday_10).open
        await a[keys.DATABASE].write(lambda c: save_emergency(c, TRAIL, SUPERVISOR, "台風のため", False, friday_10))
        for _ in range(50):
            if not b[keys.CALENDARS].call_center(friday_10).open:
                break
            await asyncio.sleep(0.1)
        assert b[keys.CALENDARS].emergency_reason == "台風のため"
    finally:
        for runner in runners:
            await runner.cleanup()
