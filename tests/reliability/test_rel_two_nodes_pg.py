"""Two ``cti serve`` nodes on one PostgreSQL (fsync on); node A is killed with SIGKILL while both take
consent and callback requests from their operators, again and again; node B never stops.

After every kill: every acknowledged (2xx) write of either node is in PostgreSQL; node B's operators
were never refused (the writers fail on a 401/403/500) and B went on acknowledging after A died;
``cti audit verify`` passes (one chain for both nodes); and node A comes back on
the same store. (The operators' sessions are per node until access is on the gateway, so here each
operator stays with its node; see docs/deployment-two-nodes.md.)
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from node_processes import NodeProcess, cti
from pg_support import PgCluster
from rel_app import PASSWORD
from reliability_support import LONG, figures, stored
from test_rel_server_crash import CALLS_PER_WRITER, Operator, free_port, start_serving, write_config, writer

from cti.store_backend import open_store
from records.schema import migrations

KILLS = 6 if LONG else 2
WRITERS = 3
SESSION_KEY = "0123456789abcdef" * 4


def node_config(tmp_path: Path, name: str, url: str) -> tuple[Path, int]:
    home = tmp_path / name
    home.mkdir()
    port = free_port()
    config = write_config(home, port)
    text = config.read_text("utf-8").replace("[store]\n", f'[store]\nurl = "{url}"\n', 1)
    # one session key for both nodes (cti serve refuses PostgreSQL without one)
    text = text.replace("[security]\n", f'[security]\nsession_key = "{SESSION_KEY}"\n', 1)
    config.write_text(text, encoding="utf-8")
    return config, port


async def seed_calls(url: str, call_ids: list[str]) -> None:
    """The contacts the nodes would have created on each answer (no AMI link in this test)."""
    db = await open_store(url, migrations())
    try:
        await db.write(lambda c: c.executemany(
            "INSERT INTO contacts(call_id, operator, started_at, caller_number) VALUES (?,?,?,?)",
            [(call, "op1", "2026-12-04T19:00:00+09:00", "0312345678") for call in call_ids]))
    finally:
        await db.close()


async def test_killing_one_of_two_nodes_loses_no_acknowledged_record(tmp_path: Path) -> None:
    cluster = PgCluster.start(durable=True)
    try:
        url = cluster.new_url()
        (config_a, port_a), (config_b, port_b) = node_config(tmp_path, "a", url), node_config(tmp_path, "b", url)
        # accounts are in the shared store: added once, through either node's configuration
        added = cti(config_a, "user", "add", "op1", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        assert not (tmp_path / "a" / "cti.sqlite3").exists()  # nothing went to the SQLite path
        node_a = NodeProcess("cti-a", config_a, port_a, tmp_path / "a" / "serve.log")
        node_b = NodeProcess("cti-b", config_b, port_b, tmp_path / "b" / "serve.log")
        await asyncio.gather(start_serving(node_a), start_serving(node_b))
        await seed_calls(url, [f"{node}{r}w{w}-{n}" for node in "ab" for r in range(KILLS) for w in range(WRITERS)
                               for n in range(1, CALLS_PER_WRITER + 1)])
        rnd = random.Random(18)
        acked: list[tuple[str, str]] = []
        restarts = []
        try:
            for round_no in range(KILLS):
                op_a, op_b = Operator(f"http://127.0.0.1:{port_a}"), Operator(f"http://127.0.0.1:{port_b}")
                try:
                    await op_a.login()
                    await op_b.login()
                    stop = asyncio.Event()
                    acked_b: list[tuple[str, str]] = []
                    tasks = [asyncio.create_task(writer(op_a, f"a{round_no}w{w}", acked, stop))
                             for w in range(WRITERS)]
                    tasks += [asyncio.create_task(writer(op_b, f"b{round_no}w{w}", acked_b, stop))
                              for w in range(WRITERS)]
                    target = len(acked) + rnd.randint(20, 80)
                    deadline = time.monotonic() + 60
                    while len(acked) < target and time.monotonic() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
                    node_a.kill9()  # A's writers are mid-request; B's go on
                    killed_at = len(acked_b)
                    for _ in range(200):  # B keeps acknowledging after A died
                        if len(acked_b) >= killed_at + 20:
                            break
                        await asyncio.sleep(0.01)
                    after_kill = len(acked_b) - killed_at
                    stop.set()
                    await asyncio.gather(*tasks)
                    acked += acked_b
                    assert after_kill >= 20, f"node B stalled after node A was killed ({after_kill} writes)"
                finally:
                    await op_a.session.close()
                    await op_b.session.close()
                present = await stored(url)
                lost = [(c, k) for c, k in acked if c not in present[k]]
                assert not lost, f"acknowledged writes lost: {lost[:10]} ({len(lost)} in all)"
                restarts.append(await start_serving(node_a))
                verify = cti(config_b, "audit", "verify")
                assert verify.returncode == 0, verify.stdout + verify.stderr
        finally:
            node_a.stop()
            node_b.stop()
        figures("two_nodes_pg_kill9", kills=KILLS, acknowledged_writes_checked=len(acked), lost=0,
                restart_seconds=[round(s, 2) for s in restarts], audit_verify="ok")
        assert len(acked) > KILLS * 20
    finally:
        cluster.stop()
