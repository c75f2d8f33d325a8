"""Failover under load: two ``cti serve`` nodes on one PostgreSQL (fsync on) and the real Asterisk 22,
behind Debian's HAProxy (deploy/haproxy.cfg via tests/e2e/haproxy_lb.py). Every operator (both seats
of the lab queue) and a department staff member work only through HAProxy; the node holding the
most operator websockets is killed with SIGKILL, again (CI: 2 kills; CTI_RELIABILITY_LONG=1: 4), and
started again after each kill.

Each operator is what the operator page does (screenpop/web/ws.js): a websocket that, when it
drops, reconnects through HAProxy after 250-500 ms and sends ``resume`` with its last seq and
epoch; two writers record consent and callback requests for the operator's calls. The staff
member clicks click-to-call on handed-over requests and, when a click fails (the node died under
it), clicks again until it is accepted (202) or refused as in progress (409).

After the kills: every operator resumed after every kill (a new epoch, a snapshot with their own
seat), operators on the surviving node were never disconnected, 0 acknowledged writes lost, every
request dialled at most once on the Asterisk side (its staff phone's channels), one audit chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from haproxy_lb import Balancer, free_port, running_haproxy
from node_processes import AmiLogin, NodeProcess, cti, write_node_config
from pg_support import PgCluster
from rel_app import PASSWORD
from reliability_support import LONG, figures, stored

from cti.core.clock import TOKYO
from cti.store_backend import open_store
from records import callbacks as cb_units
from records.schema import migrations
from records.trail import AuditTrail

AmiClient = sys.modules["cti_e2e_conftest"].AmiClient  # tests/e2e/conftest.py, loaded by our conftest

pytestmark = pytest.mark.asterisk

KILLS = 4 if LONG else 2
SEATS = {"op101": "Local/101@operator-phones", "op102": "Local/102@operator-phones"}
WRITERS = 2
CLICKS = 8  # click-to-call requests, one staff phone extension each (20X in the lab dialplan)
RESUME_BOUND_S = 15.0


class OperatorClient:
    """One operator's browser through HAProxy: HTTP session, and a websocket that resumes."""

    def __init__(self, user: str, base: str, origin: str) -> None:
        self.user, self.base, self.origin = user, base, origin
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.epoch: str | None = None
        self.last_seq = 0
        self.snapshots: list[tuple[float, str | None, dict[str, Any]]] = []  # (when, epoch, desk state)
        self.drops: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def login_and_sit(self) -> None:
        async with self.session.post(f"{self.base}/api/login", json={"user_id": self.user, "password": PASSWORD},
                                     headers={"Origin": self.origin}) as r:
            assert r.status == 200, await r.text()
            self.csrf = (await r.json())["csrf_token"]
        assert await self.post("/api/seat", {"interface": SEATS[self.user]}) == 200

    async def post(self, path: str, body: dict[str, Any], base: str | None = None) -> int:
        async with self.session.post(f"{base or self.base}{path}", json=body,
                                     headers={"Origin": self.origin, "X-CSRF-Token": self.csrf}) as r:
            await r.read()
            return r.status

    def start_socket(self) -> None:
        self._task = asyncio.create_task(self._socket_loop())

    async def _socket_loop(self) -> None:
        while True:
            try:
                async with self.session.ws_connect(f"{self.base.replace('http', 'ws', 1)}/ws",
                                                   headers={"Origin": self.origin}) as ws:
                    first = ({"type": "ping"} if self.epoch is None
                             else {"type": "resume", "last_seq": self.last_seq, "epoch": self.epoch})
                    await ws.send_str(json.dumps(first))
                    async for frame in ws:
                        self._on_message(json.loads(frame.data))
            except (aiohttp.ClientError, OSError):
                pass
            self.drops.append(time.monotonic())
            await asyncio.sleep(0.25)  # the page waits 250-500 ms before it reconnects

    def _on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "hello":
            if self.epoch is not None and msg["epoch"] != self.epoch:
                self.last_seq = 0
            self.epoch = msg["epoch"]
        elif msg.get("type") == "snapshot":
            self.snapshots.append((time.monotonic(), self.epoch, msg.get("state") or {}))
        if isinstance(msg.get("seq"), int) and msg.get("type") in ("ringing", "pop", "call_update", "presence",
                                                                   "snapshot"):
            self.last_seq = max(self.last_seq, msg["seq"])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.session.close()


async def writer(op: OperatorClient, name: str, acked: list[tuple[str, str]], stop: asyncio.Event) -> None:
    """consent -> callback per call; (call_id, kind) kept only on a 2xx answer."""
    n = 0
    while not stop.is_set():
        n += 1
        call_id = f"{name}-{n}"
        for kind, path, body in (
            ("consent", f"/api/records/contacts/{call_id}/consent", {"answer": "yes"}),
            ("callback", f"/api/records/contacts/{call_id}/callbacks",
             {"name": "試験太郎", "phone": "09012345678", "question": f"試験 {call_id}", "department": "zeimu"}),
        ):
            try:
                status = await op.post(path, body)
            except (TimeoutError, aiohttp.ClientError):
                break  # the node died under this request: not acknowledged; the operator goes on
            if 200 <= status < 300:
                acked.append((call_id, kind))
            else:
                assert status not in (401, 403, 500), f"{kind} {call_id}: {status}"
                break


async def clicker(staff: OperatorClient, callback_ids: list[int], results: dict[int, int],
                  under_way: asyncio.Event, home: str) -> int:
    """Click-to-call on each request, one after the other without a pause, each first sent to the
    node at `home` (the one about to be killed: a click is in flight when it dies); a click that
    fails is clicked again through HAProxy, as a person would. `under_way` is set after the third
    request. Returns how many clicks were repeated."""
    repeated = 0
    for index, callback_id in enumerate(callback_ids):
        extension = f"20{index}"
        base = home
        while True:
            try:
                async with staff.session.get(f"{staff.base}/api/records/callbacks/{callback_id}") as r:
                    version = (await r.json())["version"] if r.status == 200 else None
                if version is not None:
                    status = await staff.post(f"/api/department/callbacks/{callback_id}/call",
                                              {"extension": extension, "version": version}, base=base)
                    if status in (202, 409):
                        results[callback_id] = status
                        if len(results) >= 3:
                            under_way.set()
                        break
            except (TimeoutError, aiohttp.ClientError, KeyError):
                pass
            repeated += 1
            base = staff.base
            await asyncio.sleep(0.3)
    return repeated


async def seed(url: str, calls: dict[str, str]) -> None:
    """The contacts the nodes would have created on each answer (call id -> operator)."""
    db = await open_store(url, migrations())
    try:
        await db.write(lambda c: c.executemany(
            "INSERT INTO contacts(call_id, operator, started_at, caller_number) VALUES (?,?,?,?)",
            [(call, op, datetime.now(TOKYO).isoformat(), "0312345678") for call, op in calls.items()]))
    finally:
        await db.close()


async def hand_over_all(url: str) -> list[int]:
    db = await open_store(url, migrations())
    try:
        def unit(conn: Any) -> list[int]:
            (latest,) = conn.execute("SELECT max(handover_at) FROM callbacks WHERE status = 'received'").fetchone()
            return cb_units.hand_over_due(conn, AuditTrail(lambda: datetime.now(TOKYO)),
                                          at=datetime.fromisoformat(latest), public_info="kuseijoho")

        return await db.write(unit)
    finally:
        await db.close()


async def wait_up(lb: Balancer, node: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while lb.server_states().get(node) != "UP":
        assert time.monotonic() < deadline, f"HAProxy does not see {node} up: {lb.server_states()}"
        await asyncio.sleep(0.1)


async def test_kill9_failover_through_haproxy_resumes_every_operator_loses_nothing_dials_once(
    tmp_path: Path, pbx: Any,
) -> None:
    cluster = PgCluster.start(durable=True)
    ami = AmiClient()
    ops: list[OperatorClient] = []
    nodes: dict[str, NodeProcess] = {}
    try:
        url = cluster.new_url()
        lb_port = free_port()
        origin = f"http://127.0.0.1:{lb_port}"
        login = AmiLogin(pbx.ami_host, pbx.ami_port, pbx.ami_username, pbx.ami_secret)
        for name in ("cti-a", "cti-b"):
            port = free_port()
            config = write_node_config(tmp_path / name, port, url, origin, login)
            nodes[name] = NodeProcess(name, config, port, tmp_path / name / "serve.log")
        for args in (*((user, "--role", "operator") for user in SEATS),
                     ("kodomo1", "--role", "department", "--department", "kosodate")):
            added = cti(nodes["cti-a"].config, "user", "add", *args, "--password-stdin", stdin=PASSWORD + "\n")
            assert added.returncode == 0, added.stderr
        rounds = [f"r{r}w{w}" for r in range(KILLS) for w in range(WRITERS)]
        await seed(url, {f"{user}{prefix}-{n}": user for user in SEATS for prefix in rounds for n in range(1, 301)}
                   | {f"clk-{i}": "op101" for i in range(CLICKS)})
        await ami.connect(pbx.ami_host, pbx.ami_port, pbx.admin_username, pbx.admin_secret)
        for node in nodes.values():
            node.start()
        await asyncio.gather(*(node.wait_ready() for node in nodes.values()))
        with running_haproxy(tmp_path, {n: node.port for n, node in nodes.items()}, port=lb_port) as lb:
            for name in nodes:
                await wait_up(lb, name)
            ops = [OperatorClient(user, lb.base_url, origin) for user in SEATS]
            for op in ops:
                await op.login_and_sit()
                op.start_socket()
            for op in ops:  # a fresh page's snapshot, with its seat
                await until(lambda op=op: bool(op.snapshots), 10, f"{op.user}'s first snapshot")
                assert op.snapshots[0][2].get("seat") == SEATS[op.user]
            # the requests the staff member will call back: taken by op101, handed over
            for i in range(CLICKS):
                assert await ops[0].post(f"/api/records/contacts/clk-{i}/consent", {"answer": "yes"}) in (200, 201)
                assert await ops[0].post(f"/api/records/contacts/clk-{i}/callbacks", {
                    "name": "試験花子", "phone": "0312345678", "question": "折り返し試験",
                    "department": "kosodate"}) == 201
            callback_ids = sorted(await hand_over_all(url))
            assert len(callback_ids) == CLICKS
            staff = OperatorClient("kodomo1", lb.base_url, origin)
            ops.append(staff)
            async with staff.session.post(f"{lb.base_url}/api/login",
                                          json={"user_id": "kodomo1", "password": PASSWORD},
                                          headers={"Origin": origin}) as r:
                assert r.status == 200
                staff.csrf = (await r.json())["csrf_token"]
            mark = len(ami.events)
            clicks: dict[int, int] = {}
            counts = {name: await node.ws_clients() for name, node in nodes.items()}
            first_victim = max(counts, key=lambda n: counts[n])  # as kill_and_resume will choose
            under_way = asyncio.Event()
            clicking = asyncio.create_task(clicker(staff, callback_ids, clicks, under_way, nodes[first_victim].url))

            acked: list[tuple[str, str]] = []
            resumes: list[float] = []
            for round_no in range(KILLS):
                stop = asyncio.Event()
                tasks = [asyncio.create_task(writer(op, f"{op.user}r{round_no}w{w}", acked, stop))
                         for op in ops[:len(SEATS)] for w in range(WRITERS)]
                target = len(acked) + 40
                await until(lambda target=target: len(acked) >= target, 60, "writes before the kill")
                if round_no == 0:  # the first kill comes while the staff member is clicking
                    await asyncio.wait_for(under_way.wait(), 30)
                victim_name, took = await kill_and_resume(nodes, ops[:len(SEATS)])
                assert round_no > 0 or victim_name == first_victim
                resumes += took
                stop.set()
                await asyncio.gather(*tasks)
                present = await stored(url)
                lost = [(c, k) for c, k in acked if c not in present[k]]
                assert not lost, f"acknowledged writes lost: {lost[:10]} ({len(lost)} in all)"
                nodes[victim_name].start()
                await nodes[victim_name].wait_ready()
                await wait_up(lb, victim_name)
            repeated = await asyncio.wait_for(clicking, 120)
            # every request dialled at most once: its staff phone (extension 20<index>) rang once
            legs = Counter(e["Channel"].split("@")[0] for e in ami.events[mark:]
                           if e.get("Event") == "Newchannel" and e.get("Channel", "").endswith(";1")
                           and "@department-phones-" in e.get("Channel", ""))
            assert all(count <= 1 for count in legs.values()), f"dialled twice: {legs}"
            for index, callback_id in enumerate(callback_ids):  # an accepted click rang its staff phone
                assert clicks[callback_id] == 409 or legs[f"Local/20{index}"] == 1, (callback_id, legs)
            verify = cti(nodes["cti-b"].config, "audit", "verify")
            assert verify.returncode == 0, verify.stdout + verify.stderr
        figures("two_nodes_failover", kills=KILLS, operators=len(SEATS), acknowledged_writes_checked=len(acked),
                lost=0, resume_seconds=[round(s, 2) for s in resumes], clicks=len(clicks),
                clicks_repeated=repeated, clicks_refused_409=sum(1 for s in clicks.values() if s == 409),
                originates=sum(legs.values()), duplicate_originates=0)
    finally:
        for op in ops:
            await op.close()
        await ami.close()
        for node in nodes.values():
            node.stop()
        cluster.stop()


async def kill_and_resume(nodes: dict[str, NodeProcess], operators: list[OperatorClient]) -> tuple[str, list[float]]:
    """kill -9 the node with the most operator websockets; assert that exactly its operators dropped
    and resumed on the other node (new epoch, a snapshot with their seat) and the others stayed.
    Returns the victim's name and each moved operator's seconds from the kill to that snapshot."""
    counts = {name: await node.ws_clients() for name, node in nodes.items()}
    assert sum(counts.values()) == len(operators), counts
    victim_name = max(counts, key=lambda n: counts[n])
    survivor = next(node for name, node in nodes.items() if name != victim_name)
    epochs = {op.user: op.epoch for op in operators}
    drops = {op.user: len(op.drops) for op in operators}

    def dropped() -> list[OperatorClient]:
        return [op for op in operators if len(op.drops) > drops[op.user]]

    killed_at = time.monotonic()
    nodes[victim_name].kill9()
    await until(lambda: len(dropped()) >= counts[victim_name], 5, "the victim's sockets dropped")
    moved = dropped()
    assert len(moved) == counts[victim_name], (counts, [op.user for op in moved])
    took = []
    for op in moved:  # resumed on the survivor: a new epoch and a snapshot with their seat

        def resumed(op: OperatorClient = op) -> bool:
            return any(t > killed_at and e != epochs[op.user] for t, e, _ in op.snapshots)

        await until(resumed, RESUME_BOUND_S, f"{op.user} resumed")
        when, _, state = next(snap for snap in op.snapshots if snap[0] > killed_at)
        assert state.get("seat") == SEATS[op.user], state
        took.append(when - killed_at)
    assert await survivor.ws_clients() == len(operators)  # every operator is on the survivor now
    for op in operators:
        if op not in moved:
            assert len(op.drops) == drops[op.user], f"{op.user} on the survivor was disconnected"
    return victim_name, took


async def until(predicate: Any, within: float, what: str) -> None:
    """Poll `predicate` (sync) every 20 ms until true, at most `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        await asyncio.sleep(0.02)
