"""Issue 14.5: `cti serve` works under the restrictions of deploy/cti.service, emulated without systemd
(PID 1 here is not systemd): its own unprivileged user (nobody), no capabilities, no new privileges,
umask 077, the whole file system read-only except the store directory (a private mount namespace,
as ProtectSystem=strict + ReadWritePaths do). A login, a request and a logout write the store; the
files it made are the service user's and 0600; it stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_USER = "nobody"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandboxed(store: Path, *command: str) -> list[str]:
    """`command` as SERVICE_USER in a private mount namespace where only `store` is writable.

    When the interpreter lives under /root (0700), a 0755 tmpfs over /root exposes just the directory
    holding it (e.g. .pyenv); the rest of /root stays out of reach, like ProtectHome=yes."""
    real_root = store.parent / "realroot"
    steps = []
    interpreter = Path(sys.executable).resolve()
    if interpreter.is_relative_to("/root"):
        top = interpreter.relative_to("/root").parts[0]
        steps += [
            f"mount --bind /root {real_root}",
            "mount -t tmpfs -o mode=755 tmpfs /root",
            f"mkdir /root/{top}",
            f"mount --bind {real_root}/{top} /root/{top}",
        ]
    script = " && ".join([
        *steps,
        f"mount --bind {store} {store}",
        "mount -o remount,bind,ro /",
        "umask 077",
        'exec setpriv --reuid="$CTI_SANDBOX_USER" --regid="$(id -g "$CTI_SANDBOX_USER")" --clear-groups'
        ' --no-new-privs --inh-caps=-all --bounding-set=-all "$@"',
    ])
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sandbox", *command]


@pytest.fixture
def box() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("this test emulates the unit's sandbox with unshare/setpriv and must run as root")
    for tool in ("unshare", "setpriv"):
        assert shutil.which(tool), f"{tool} (util-linux) is installed by scripts/setup"
    top = Path(tempfile.mkdtemp(prefix="cti-sandbox-"))
    try:
        top.chmod(0o755)
        (top / "realroot").mkdir()
        store = top / "store"
        store.mkdir()
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(store, user.pw_uid, user.pw_gid)
        store.chmod(0o700)
        yield store
    finally:
        subprocess.run(["umount", "-l", str(top / "realroot")], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


async def test_cti_serve_runs_as_its_own_user_writing_only_its_store(box: Path) -> None:
    store = box
    port = free_port()
    config = store.parent / "cti.toml"
    config.write_text(f"""
[http]
port = {port}
[store]
path = "{store / 'cti.sqlite3'}"
[ami]
enabled = false
[agi]
enabled = false
""", encoding="utf-8")
    config.chmod(0o644)
    env = {**os.environ, "CTI_SANDBOX_USER": SERVICE_USER, "CTI_SECURITY__SESSION_KEY": "s" * 40}
    cti = [sys.executable, "-m", "cti"]
    add = await asyncio.create_subprocess_exec(
        *sandboxed(store, *cti, "user", "add", "op1", "--role", "operator", "--password-stdin", "--config",
                   str(config)),
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env)
    _, err = await asyncio.wait_for(add.communicate((PASSWORD + "\n").encode()), 120)
    assert add.returncode == 0, err.decode()
    log_path = store.parent / "serve.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(*sandboxed(store, *cti, "serve", "--config", str(config)),
                                                    stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.returncode is None, log_path.read_text()
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, "cti serve did not come up"
                await asyncio.sleep(0.1)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(base + "/api/login", json={"user_id": "op1", "password": PASSWORD},
                                     headers={"Origin": "http://127.0.0.1:8080"}) as resp:
                    assert resp.status == 200, await resp.text()
                    csrf = (await resp.json())["csrf_token"]
                async with http.get(base + "/api/me") as resp:
                    assert resp.status == 200
                async with http.get(base + "/readyz") as resp:
                    assert resp.status == 200, await resp.text()
                async with http.post(base + "/api/logout", headers={"X-CSRF-Token": csrf}) as resp:
                    assert resp.status == 200
        finally:
            proc.terminate()
            code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log_path.read_text()
    uid = pwd.getpwnam(SERVICE_USER).pw_uid
    made = sorted(store.iterdir())
    assert made and (store / "cti.sqlite3") in made
    for file in made:
        info = file.stat()
        assert info.st_uid == uid and info.st_mode & 0o777 == 0o600, (file, oct(info.st_mode))
    assert "Read-only file system" not in log_path.read_text()
