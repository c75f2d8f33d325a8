"""A frozen cti never holds a caller: the real `cti serve` (a subprocess with a temporary config
pointing at the test PBX) is stopped with SIGSTOP - the kernel still accepts connections to it,
nobody answers - and new calls are still routed at once: by cti's last routing state while it is
fresh, then by the dialplan's static schedule; after SIGCONT cti's state routes again.

Before the routing state, such a caller sat silent in AGI() for 39 s (Asterisk's FastAGI client
has no read timeout). The measured times go to artifacts/reliability/route_frozen.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from figures_support import record_figures
from test_calls_routing import Call, new_year_today, place_call, tokyo_weekday_other_than_today

from cti.core.clock import TOKYO

if TYPE_CHECKING:
    from conftest import AmiClient, Pbx

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]
ROUTED_WITHIN_S = 3.0  # the bound for "a new call leaves the cti decision"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readyz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:  # 503 while a dependency is not ready: same body
        return dict(json.load(exc))
    except OSError:
        return {}


@pytest.fixture
def cti_serve(pbx: Pbx, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`cti serve` with its own config; the call center is open (an opening override around now)."""
    now = datetime.now(TOKYO)
    http_port = free_port()
    config = tmp_path / "cti.toml"
    config.write_text(
        f"""
[http]
port = {http_port}
[store]
path = "{tmp_path / 'cti.sqlite3'}"
[logging]
json = false
[ami]
host = "{pbx.ami_host}"
port = {pbx.ami_port}
username = "{pbx.ami_username}"
reconnect_max = 1.0
[agi]
port = {pbx.agi_port}
[[calendar.overrides]]
kind = "opening"
applies_to = "call_center"
start = "{(now - timedelta(days=1)).isoformat()}"
end = "{(now + timedelta(days=1)).isoformat()}"
reason = "試験"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env["CTI_AMI__SECRET"] = pbx.ami_secret
    log = (tmp_path / "cti.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "cti"), "serve", "--config", str(config)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield process, http_port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()
        pbx.reset_globals()


async def wait_published(port: int, process: subprocess.Popen[bytes], within: float = 30) -> dict[str, Any]:
    """cti's /readyz says it published a routing state within the last 1.5 s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "cti serve exited"
        report = await asyncio.to_thread(readyz, port)
        component = report.get("components", {}).get("route_state", {})
        if component.get("ready") and component.get("age_s") is not None and component["age_s"] <= 1.5:
            return dict(component)
        await asyncio.sleep(0.1)
    raise AssertionError(f"cti published no routing state within {within} s: {readyz(port)}")


async def routed(ami: AmiClient) -> tuple[Call, float, str, str]:
    """Place a call; (the call, seconds until it left the routing decision, where it went, by whom)."""
    started = time.monotonic()
    call = await place_call(ami, dtmf="0")
    entered = await call.ami.wait_event(
        lambda e: e.get("Event") == "Newexten" and e.get("Uniqueid") == call.trunk_leg
        and e.get("Context") in ("cti-ivr", "cti-closed"),
        wait_s=45,
    )
    seconds = time.monotonic() - started
    return call, seconds, entered["Context"], await call.value("CTI_ROUTE_SOURCE")


async def test_frozen_cti_never_holds_a_caller(
    pbx: Pbx, ami: AmiClient, cti_serve: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = cti_serve
    # The static schedule says closed today, cti's calendar says open: the two routes differ.
    pbx.set_global("CTI_FALLBACK_DAYS", tokyo_weekday_other_than_today())
    fallback_context = "cti-closed"
    cti_context = "cti-closed" if new_year_today() else "cti-ivr"  # Jan 1-3 close before any override
    await wait_published(port, process)
    calls: list[Call] = []

    call, running_s, context, source = await routed(ami)
    calls.append(call)
    assert (context, source) == (cti_context, "cti")
    assert not call.seen("AGIExecStart")

    os.kill(process.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    # Its last state is still fresh: routed by it, at once.
    call, frozen_fresh_s, context, source = await routed(ami)
    calls.append(call)
    assert (context, source) == (cti_context, "cti")
    # Past CTI_STATE_MAX_AGE (5 s): the static schedule, at once.
    await_seconds = 6.5 - (time.monotonic() - stopped_at)
    if await_seconds > 0:
        await asyncio.sleep(await_seconds)
    call, frozen_stale_s, context, source = await routed(ami)
    calls.append(call)
    assert (context, source) == (fallback_context, "fallback")
    assert not call.seen("AGIExecStart")
    # The AGI server of the frozen cti still accepts connections: what used to hold callers.
    with socket.create_connection(("127.0.0.1", pbx.agi_port), timeout=2):
        pass

    os.kill(process.pid, signal.SIGCONT)
    resumed_at = time.monotonic()
    await wait_published(port, process)
    republished_s = time.monotonic() - resumed_at
    call, resumed_s, context, source = await routed(ami)
    calls.append(call)
    assert (context, source) == (cti_context, "cti")
    assert readyz(port).get("ready") is True, readyz(port)

    for call in calls:
        await call.hung_up(wait_s=60)
    figures = {
        "routed_s_cti_running": round(running_s, 3),
        "routed_s_cti_frozen_state_fresh": round(frozen_fresh_s, 3),
        "routed_s_cti_frozen_state_stale": round(frozen_stale_s, 3),
        "routed_s_after_sigcont": round(resumed_s, 3),
        "state_republished_s_after_sigcont": round(republished_s, 3),
    }
    record_figures("e2e", "route_frozen", figures)
    assert max(running_s, frozen_fresh_s, frozen_stale_s, resumed_s) < ROUTED_WITHIN_S, figures
