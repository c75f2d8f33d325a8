"""Issue 14.3: `cti serve` speaks HTTPS from `http.tls_cert`/`http.tls_key` (a certificate this test
makes with openssl), cookies are Secure and answers carry HSTS; behind a reverse proxy the client
address comes from X-Forwarded-For only when the proxy is in `security.trusted_proxies`."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from authhub_harness import ORIGIN, PASSWORD, Clock, add_user, make_settings, start

from cti.config import ConfigError, HttpSettings, load_settings
from cti.serve import TlsError, tls_context

ROOT = Path(__file__).resolve().parents[2]
CTI = [sys.executable, "-m", "cti"]
Client = TestClient[Any, Any]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    os.chmod(key, 0o600)
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real `cti serve` with TLS on a free port, one operator account; yields (port, certificate)."""
    cert, key = make_certificate(tmp_path)
    port = free_port()
    config = tmp_path / "cti.toml"
    config.write_text(f"""
[http]
port = {port}
tls_cert = "{cert}"
tls_key = "{key}"
[store]
path = "{tmp_path / 'cti.sqlite3'}"
[ami]
enabled = false
[agi]
enabled = false
[security]
allowed_origins = ["https://127.0.0.1:{port}"]
""", encoding="utf-8")
    env = {**os.environ, "CTI_SECURITY__SESSION_KEY": "k" * 40}
    added = subprocess.run([*CTI, "user", "add", "op1", "--role", "operator", "--password-stdin", "--config",
                            str(config)], input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, env=env)
    assert added.returncode == 0, added.stderr
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*CTI, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "cti serve did not come up"
            time.sleep(0.1)
        yield port, cert
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def test_cti_serve_speaks_https_with_secure_cookies_and_hsts(served: tuple[int, Path]) -> None:
    port, cert = served
    trust = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}"
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust), cookie_jar=jar) as http:
        async with http.get(base + "/login") as resp:
            assert resp.status == 200 and "ログイン" in await resp.text()
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        async with http.post(base + "/api/login", json={"user_id": "op1", "password": PASSWORD},
                             headers={"Origin": base}) as resp:
            assert resp.status == 200, await resp.text()
            cookie = resp.headers["Set-Cookie"]
            assert "cti_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
        async with http.get(base + "/api/me") as resp:
            assert resp.status == 200 and (await resp.json())["user_id"] == "op1"
    # the same port does not answer plain HTTP
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/login", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                await resp.read()
    # and an untrusted certificate is refused by a client that checks it (no silent downgrade)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(base + "/login") as resp:
                await resp.read()


def test_unusable_tls_files_are_refused_before_serving(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    assert tls_context(HttpSettings()) is None
    assert isinstance(tls_context(HttpSettings(tls_cert=cert, tls_key=key)), ssl.SSLContext)
    with pytest.raises(TlsError, match="no such file"):
        tls_context(HttpSettings(tls_cert=cert, tls_key=tmp_path / "missing.pem"))
    os.chmod(key, 0o644)
    with pytest.raises(TlsError, match="chmod 600"):
        tls_context(HttpSettings(tls_cert=cert, tls_key=key))
    os.chmod(key, 0o600)
    with pytest.raises(TlsError, match="cannot load"):
        tls_context(HttpSettings(tls_cert=key, tls_key=key))
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        load_settings(None, {"CTI_HTTP__TLS_CERT": str(cert)})


def test_cti_serve_exits_2_naming_the_key_when_it_is_exposed(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    os.chmod(key, 0o640)
    config = tmp_path / "cti.toml"
    config.write_text(f'[http]\nport = {free_port()}\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
                      f'[store]\npath = "{tmp_path / "cti.sqlite3"}"\n[ami]\nenabled = false\n[agi]\nenabled = false\n',
                      encoding="utf-8")
    done = subprocess.run([*CTI, "serve", "--config", str(config)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 2 and "http.tls_key" in done.stderr and "chmod 600" in done.stderr


# --- behind a reverse proxy ----------------------------------------------------------------------


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[Client]:
    c = await start(tmp_path, Clock(), make_settings(security={
        "operator_networks": ["10.20.0.0/16"], "trusted_proxies": ["127.0.0.1/32", "10.99.0.0/16"],
    }))
    await add_user(c, "op1", "operator")
    yield c
    await c.close()


async def login_via(client: Client, forwarded_for: str | None, proto: str | None = None) -> aiohttp.ClientResponse:
    headers = {"Origin": ORIGIN}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    client.session.cookie_jar.clear()
    resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD}, headers=headers)
    await resp.read()
    return resp


async def test_a_trusted_proxy_names_the_client_by_its_rightmost_untrusted_hop(proxied: Client) -> None:
    assert (await login_via(proxied, None)).status == 403  # the proxy itself is not in the operator room
    assert (await login_via(proxied, "10.20.3.4")).status == 200
    # hops left of the last untrusted one could have been written by the client: ignored
    assert (await login_via(proxied, "10.20.3.4, 203.0.113.9")).status == 403
    assert (await login_via(proxied, "203.0.113.9, 10.20.3.4")).status == 200
    # a chain of trusted proxies is walked through
    assert (await login_via(proxied, "10.20.3.4, 10.99.0.1")).status == 200
    assert (await login_via(proxied, "not-an-address, 10.99.0.1")).status == 403


async def test_https_at_a_trusted_proxy_makes_cookies_secure(proxied: Client) -> None:
    resp = await login_via(proxied, "10.20.3.4", proto="https")
    assert resp.status == 200 and "Secure" in resp.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in resp.headers
    resp = await login_via(proxied, "10.20.3.4")
    assert resp.status == 200 and "Secure" not in resp.headers["Set-Cookie"]


async def test_without_trusted_proxies_the_forwarded_headers_are_ignored(tmp_path: Path) -> None:
    c = await start(tmp_path, Clock(), make_settings(security={"operator_networks": ["10.20.0.0/16"]}))
    try:
        await add_user(c, "op1", "operator")
        assert (await login_via(c, "10.20.3.4", proto="https")).status == 403  # a client cannot claim the room
        resp = await c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" not in resp.headers
    finally:
        await c.close()


async def test_the_allowlist_of_every_request_uses_the_forwarded_client(proxied: Client) -> None:
    assert (await login_via(proxied, "10.20.3.4")).status == 200
    resp = await proxied.get("/api/me", headers={"X-Forwarded-For": "10.20.3.4"})
    assert resp.status == 200
    resp = await proxied.get("/api/me", headers={"X-Forwarded-For": "198.51.100.1"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "outside_operator_room"
    await asyncio.sleep(0)
