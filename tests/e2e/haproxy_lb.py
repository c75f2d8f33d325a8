"""Debian's HAProxy in front of cti nodes, for the failover tests: ``haproxy -f cfg -db`` as a child
process (no system service), loopback only, on a free port.

The configuration is deploy/haproxy.cfg's (the one shipped for a ward's two nodes) with the addresses
and the TLS bind of a test: health checks on cti's readiness endpoint (GET /readyz, 200 only when the
database, the AMI link and the rest are ready) every 500 ms, a node out after 2 failed checks; a
request whose connection to a node fails is sent to the other node (``option redispatch 1``,
``retry-on conn-failure``), so a browser's reconnect right after a node died lands on the survivor
before the checks have noticed; websockets stay open as tunnels (``timeout tunnel``); a browser
stays on its node while that node is up (cookie CTINODE).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HAPROXY = "/usr/sbin/haproxy"
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "haproxy.cfg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lab_config(port: int, nodes: dict[str, int], check_ms: int = 500, stats_socket: Path | None = None) -> str:
    """deploy/haproxy.cfg, bound to 127.0.0.1:`port` without TLS, with `nodes` (name -> port on
    127.0.0.1) as the servers; the timeouts, checks and retries stay the shipped ones except the
    check interval. `stats_socket`: HAProxy's runtime socket, to ask which servers are up."""
    lines: list[str] = []
    for line in SHIPPED.read_text("utf-8").splitlines():
        stripped = line.strip()
        if stripped == "global" and stats_socket is not None:
            lines += [line, f"    stats socket {stats_socket} mode 600 level user"]
        elif stripped.startswith("bind "):
            if not any(seen.strip().startswith("bind ") for seen in lines):
                lines.append(f"    bind 127.0.0.1:{port}")
        elif stripped.startswith(("server ", "log ", "http-request redirect", "option httplog")):
            continue  # the ward's servers, syslog and the TLS redirect are not the test's
        elif stripped.startswith("cookie "):
            lines.append(line.replace(" secure", ""))  # plain HTTP on loopback in the tests
        elif stripped.startswith("default-server "):
            lines.append(line.replace(" inter 1s", f" inter {check_ms}ms"))
        else:
            lines.append(line)
    text = "\n".join(lines) + "\n"
    servers = "".join(f"    server {name} 127.0.0.1:{node_port} check cookie {name}\n"
                      for name, node_port in nodes.items())
    assert "backend cti_nodes\n" in text, "deploy/haproxy.cfg has no backend cti_nodes"
    head, _, tail = text.partition("backend cti_nodes\n")
    backend, sep, rest = tail.rstrip("\n").partition("\n\n")
    return f"{head}backend cti_nodes\n{backend}\n{servers}{sep}{rest}"


@dataclass
class Balancer:
    port: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def server_states(self) -> dict[str, str]:
        """Server name -> HAProxy's status of it (UP, DOWN, "UP 1/2", ...), from the stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.config.parent / "haproxy.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = data.decode().splitlines()
        header = rows[0].lstrip("# ").split(",")
        states = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields.get("pxname") == "cti_nodes" and fields.get("svname") not in ("FRONTEND", "BACKEND"):
                states[fields["svname"]] = fields["status"]
        return states


@contextlib.contextmanager
def running_haproxy(workdir: Path, nodes: dict[str, int], port: int | None = None,
                    check_ms: int = 500) -> Iterator[Balancer]:
    """HAProxy in the foreground (-db) on 127.0.0.1:`port` (default: a free one) in front of `nodes`;
    stopped (SIGTERM, then SIGKILL) afterwards."""
    port = port or free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(lab_config(port, nodes, check_ms, stats_socket=workdir / "haproxy.sock"), encoding="utf-8")
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"haproxy -c refused the configuration:\n{checked.stdout}{checked.stderr}"
    log = workdir / "haproxy.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([HAPROXY, "-f", str(config), "-db"], stdout=out, stderr=subprocess.STDOUT)
    balancer = Balancer(port, config, log, proc)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, f"haproxy exited:\n{balancer.output()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert time.monotonic() < deadline, f"haproxy did not listen within 15 s:\n{balancer.output()}"
            time.sleep(0.05)
        yield balancer
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
