"""Smoke test of the README's main command, from this checkout: `scripts/run` starts Asterisk and
cti (its own PBX instance, ports and demo directory by environment), every dependency gets ready,
operator op101 logs in, takes the seat and opens the websocket, `scripts/pbx call --from ...
--digit 5` places a citizen's call that the lab's operator phone 101 answers, and the pop arrives
with the caller's number and the category. Ctrl-C (SIGINT to the process group) stops cti and
Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CTI_PBX_CACHE", "/var/cache/cti"))
CALLER = "0312345678"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


PREFIX = "run-smoke-"


def reap_orphans() -> None:
    """Stop PBX instances left by smoke runs whose pytest was killed (its pid no longer exists)."""
    instances = CACHE / "asterisk-sid" / "cti"
    for path in instances.glob(f"{PREFIX}*") if instances.is_dir() else []:
        owner = path.name.removeprefix(PREFIX)
        if not path.is_dir() or not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        env = {**os.environ, "CTI_PBX_INSTANCE": path.name}
        subprocess.run([str(ROOT / "scripts" / "pbx"), "down"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(path, ignore_errors=True)
        (instances / f"{path.name}.lock").unlink(missing_ok=True)


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    http_port: int
    ami_port: int
    output: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def printed(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def pbx(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "scripts" / "pbx"), *args], env=self.env, capture_output=True,
                              text=True, timeout=60)


@pytest.fixture
def scripts_run(tmp_path: Path) -> Iterator[Run]:
    if os.environ.get("CTI_SKIP_PBX") == "1":
        pytest.skip("CTI_SKIP_PBX=1: tests that need the local Asterisk PBX are skipped")
    reap_orphans()
    instance = f"{PREFIX}{os.getpid()}"
    http_port, ami_port, agi_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env.update(CTI_PBX_INSTANCE=instance, CTI_PBX_AMI_PORT=str(ami_port), CTI_PBX_AGI_PORT=str(agi_port),
               CTI_HTTP__PORT=str(http_port), CTI_RUN_DIR=str(tmp_path / "demo"),
               # the demo call must reach an operator whatever the hour and day the test runs (the
               # shipped hours, 08:00-22:00 JST and not Jan 1-3, routed it closed at night)
               CTI_CALENDAR__CALL_CENTER__OPENS="00:00", CTI_CALENDAR__CALL_CENTER__CLOSES="23:59",
               CTI_CALENDAR__CALL_CENTER__CLOSED_MONTH_DAYS="[]")
    output = tmp_path / "run.out"
    with output.open("wb") as sink:
        # Its own process group, like a terminal job: SIGINT to the group is the user's Ctrl-C.
        process = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    run = Run(process, env, http_port, ami_port, output)
    try:
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(60)
        run.pbx("down")
        shutil.rmtree(CACHE / "asterisk-sid" / "cti" / instance, ignore_errors=True)
        (CACHE / "asterisk-sid" / "cti" / f"{instance}.lock").unlink(missing_ok=True)


async def wait_ready(session: aiohttp.ClientSession, run: Run, within: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        assert run.process.poll() is None, f"scripts/run exited ({run.process.returncode}):\n{run.printed()[-3000:]}"
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{run.url}/readyz") as response:
                last = await response.json()
                if response.status == 200:
                    return dict(last)
        await asyncio.sleep(0.5)
    raise AssertionError(f"not ready within {within} s: {last}\n{run.printed()[-3000:]}")


async def test_scripts_run_serves_a_real_call_and_stops_on_ctrl_c(scripts_run: Run) -> None:
    run = scripts_run
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        report = await wait_ready(session, run)
        components = report["components"]
        assert {"ami", "database", "faq", "route_state"} <= set(components), components
        assert all(c["ready"] for c in components.values()), components
        # the demo data: the municipal FAQ and the sample ward documents (searched beside it)
        assert components["faq"]["entries"] == 661 and components["faq"]["documents"] > 0, components["faq"]
        # The screens are printed once cti's HTTP server answers (the script polls /healthz every 0.1 s).
        for _ in range(100):
            if "Press Ctrl-C" in run.printed():
                break
            await asyncio.sleep(0.1)
        printed = run.printed()
        for screen in ("/operator/", "/supervisor/", "/department/"):
            assert f"{run.url}{screen}" in printed, printed
        for login in ("op101 / demo-pass-op101", "sv1 / demo-pass-sv1", "kosodate1 / demo-pass-kosodate1"):
            assert login in printed, printed
        assert "scripts/pbx call --from 0312345678 --digit 5" in printed

        async with session.post(f"{run.url}/api/login", json={"user_id": "op101", "password": "demo-pass-op101"}) as r:
            assert r.status == 200, await r.text()
            csrf = (await r.json())["csrf_token"]
        headers = {"X-CSRF-Token": csrf, "Origin": run.url}
        # the FAQ was imported with its editors' keywords (how callers ask about each entry)
        async with session.get(f"{run.url}/api/faq/1") as r:
            assert r.status == 200, await r.text()
            assert "母子手帳 もらうには" in (await r.json())["keywords"]
        async with session.post(f"{run.url}/api/seat", json={"interface": "Local/101@operator-phones"},
                                headers=headers) as r:
            assert r.status == 200, await r.text()
        async with session.ws_connect(f"{run.url}/ws", headers={"Origin": run.url}) as ws:
            hello = await ws.receive_json(timeout=10)
            assert hello["type"] == "hello" and hello["user_id"] == "op101"
            await ws.send_json({"type": "resume", "last_seq": 0})  # as the operator page does
            # A new seat starts away (受付開始前): the operator says 受付可 before the queue offers calls.
            await ws.send_json({"type": "presence_set", "state": "ready"})
            await next_matching(ws, lambda m: m.get("type") == "presence" and m.get("queue_paused") is False, within=15)
            # The lab's operator phone 101 answers (102 rings on without answering).
            assert run.pbx("cli", "dialplan set global SIM_OP102 noanswer").returncode == 0
            placed = run.pbx("call", "--from", CALLER, "--digit", "5", "--talk", "5")
            assert placed.returncode == 0, placed.stderr
            assert "call placed" in placed.stdout
            pop = await next_of_type(ws, "pop", within=60)
        assert pop["caller_number"] == CALLER
        assert (pop["category"], pop["category_label"]) == ("kosodate", "子育て")

    os.killpg(run.process.pid, signal.SIGINT)  # Ctrl-C
    run.process.wait(90)
    assert not listening(run.http_port), "cti still serves after Ctrl-C"
    assert not listening(run.ami_port), "Asterisk's AMI still listens after Ctrl-C"
    assert run.pbx("status").returncode == 3, "Asterisk still running after Ctrl-C"
    assert "cti_stopped" in run.printed()


async def next_of_type(ws: aiohttp.ClientWebSocketResponse, kind: str, within: float) -> dict[str, Any]:
    return await next_matching(ws, lambda message: message.get("type") == kind, within)


async def next_matching(
    ws: aiohttp.ClientWebSocketResponse, wanted: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    # One overall deadline: aiohttp restarts a receive() timeout after each server ping.
    async with asyncio.timeout(within):
        while True:
            message = await ws.receive_json()
            if wanted(message):
                return dict(message)
