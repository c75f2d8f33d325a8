"""cti nodes as real ``cti serve`` processes (so one can be killed with SIGKILL), for the failover test.

Each node gets its own configuration file: the same PostgreSQL URL, the same session key, the same
AMI user, and the origin of the load balancer in front of them (tests/e2e/haproxy_lb.py). The nodes
run on the wall clock, so the configuration opens the call center and closes the ward office for
the test's days whatever the hour (calls are queued; the operator takes callback requests).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from cti.core.clock import TOKYO

ROOT = Path(__file__).resolve().parents[2]
CTI = [sys.executable, "-m", "cti"]
SESSION_KEY = "0123456789abcdef" * 4  # one key for every node: a login on one verifies on the other


@dataclass(frozen=True)
class AmiLogin:
    host: str
    port: int
    username: str
    secret: str


def write_node_config(home: Path, port: int, store_url: str, origin: str, ami: AmiLogin) -> Path:
    now = datetime.now(TOKYO)
    start = (now - timedelta(days=1)).isoformat(timespec="seconds")
    end = (now + timedelta(days=2)).isoformat(timespec="seconds")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "cti.toml"
    config.write_text(f"""
[http]
host = "127.0.0.1"
port = {port}

[store]
url = "{store_url}"

[security]
session_key = "{SESSION_KEY}"
allowed_origins = ["{origin}"]
operator_networks = ["127.0.0.0/8", "::1/128"]

[ami]
enabled = true
host = "{ami.host}"
port = {ami.port}
username = "{ami.username}"
secret = "{ami.secret}"

[agi]
enabled = false   # the shipped dialplan routes from CTI_ROUTE_STATE, which every node publishes

[department_screen]
staff_phone = "Local/{{extension}}@department-phones"

[[calendar.overrides]]
kind = "opening"
applies_to = "call_center"
start = "{start}"
end = "{end}"
reason = "切替試験"

[[calendar.overrides]]
kind = "closure"
applies_to = "office"
start = "{start}"
end = "{end}"
reason = "切替試験"
""", encoding="utf-8")
    return config


def cti(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CTI, *args, "--config", str(config)], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@dataclass
class NodeProcess:
    name: str
    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "CTI_NODE": self.name}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*CTI, "serve", "--config", str(self.config)], stdout=out,
                                         stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    async def wait_ready(self, within: float = 60.0, path: str = "/readyz") -> float:
        """Until GET `path` answers 200 (/readyz: the database, the AMI link and the rest are ready;
        /healthz: the process serves); returns the seconds waited."""
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
                try:
                    async with session.get(f"{self.url}{path}") as r:
                        if r.status == 200:
                            return time.monotonic() - started
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() - started < within, f"{self.name} not ready: {self.log.read_text()[-3000:]}"
                await asyncio.sleep(0.05)

    async def ws_clients(self) -> int:
        """Open operator websockets on this node (its cti_ws_clients gauge)."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as r:
            text = await r.text()
        for line in text.splitlines():
            if line.startswith("cti_ws_clients "):
                return int(float(line.split()[1]))
        return 0

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
