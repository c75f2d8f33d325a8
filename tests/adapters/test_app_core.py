"""The app factory: health, readiness, metrics, and cleanup of everything it owns."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti import keys
from cti.app import create_app
from cti.config import load_settings

CAPTURE_01 = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "01-inbound-queue-answered.txt"


def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(None, {"CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"),
                                "CTI_AMI__ENABLED": "false", "CTI_AGI__ENABLED": "false"})


async def test_health_ready_and_metrics(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 200 and body["components"]["database"]["ready"] is True
        app[keys.READINESS].register("pbx", lambda: (False, {"state": "disconnected"}))
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["components"]["pbx"] == {"ready": False, "state": "disconnected"}
        text = await (await client.get("/metrics")).text()
        assert "cti_start_time_seconds" in text and "process_resident_memory_bytes" in text
        for family in ("cti_calls", "cti_callbacks", "cti_ws_clients", "cti_pops_sent_total",
                       "cti_fastagi_decision_seconds", "cti_ami_connected"):
            assert f"# TYPE {family}" in text, family


async def test_database_is_closed_on_shutdown(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    async with TestClient(TestServer(app)):
        db = app[keys.DATABASE]
        assert (await db.read(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()))[0] == "wal"
        assert (await db.read(lambda conn: conn.execute("PRAGMA synchronous").fetchone()))[0] == 2  # FULL
    with pytest.raises(RuntimeError, match="closed"):
        await db.read(lambda conn: None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cti_serve_starts_with_the_example_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "CTI_HTTP__PORT": str(port), "CTI_STORE__PATH": str(tmp_path / "db.sqlite3"),
           "CTI_AMI__ENABLED": "false", "CTI_AGI__ENABLED": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "cti", "serve", "--config", str(root / "cti.example.toml")],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "cti serve did not answer /healthz within 30 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert '"event": "cti_stopped"' in err


def test_cti_serve_refuses_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[http]\nport = -1\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "cti", "serve", "--config", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "http.port" in result.stderr and str(bad) in result.stderr


async def test_metrics_count_live_calls_by_state(tmp_path: Path) -> None:
    from cti.core.clock import system_clock
    from telephony.frames import read_capture
    from telephony.tracker import CallTracker

    tracker = CallTracker(system_clock)
    for frame in read_capture(CAPTURE_01):
        tracker.feed(frame.frame)
        if frame.frame.get("Event") == "AgentConnect":
            break  # the call is connected to operator 101, not yet ended
    app = create_app(settings(tmp_path))
    app[keys.TRACKER] = tracker  # as ami_ctx would (the AMI link is off in this test)
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()
    assert 'cti_calls{state="connected"} 1.0' in text
