"""deploy/haproxy.cfg (the load balancer shipped for two cti nodes) is valid for Debian's HAProxy and
says what docs/deployment-two-nodes.md promises; the failover tests run it (tests/e2e/haproxy_lb.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from haproxy_lb import HAPROXY, SHIPPED, lab_config


def test_the_shipped_configuration_checks_the_readiness_endpoint_and_redispatches() -> None:
    text = SHIPPED.read_text("utf-8")
    directives = {re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines()}
    for wanted in ("option httpchk GET /readyz", "http-check expect status 200", "option redispatch 1",
                   "retry-on conn-failure", "timeout tunnel 1h", "balance leastconn", "option forwardfor",
                   "cookie CTINODE insert indirect nocache httponly secure"):
        assert wanted in directives, wanted
    assert "empty-response" not in text  # a request a node may have taken is never sent again


def test_haproxy_accepts_it_and_only_misses_the_wards_certificate(tmp_path: Path) -> None:
    shipped = subprocess.run([HAPROXY, "-c", "-f", str(SHIPPED)], capture_output=True, text=True, timeout=30)
    errors = [line for line in (shipped.stdout + shipped.stderr).splitlines() if "[ALERT]" in line]
    assert errors and all("cti.pem" in e or "Error(s) found" in e or "Fatal errors" in e for e in errors), errors
    lab = tmp_path / "haproxy.cfg"
    lab.write_text(lab_config(18080, {"cti-a": 18081, "cti-b": 18082}, stats_socket=tmp_path / "s.sock"), "utf-8")
    checked = subprocess.run([HAPROXY, "-c", "-f", str(lab)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = lab.read_text("utf-8")
    assert "server cti-a 127.0.0.1:18081 check cookie cti-a" in text and "bind 127.0.0.1:18080" in text
    assert "crt " not in text  # plain HTTP on loopback
    assert not any(line.strip().startswith("bind ") and "ssl" in line for line in text.splitlines())
