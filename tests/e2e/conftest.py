"""End-to-end fixtures: a real Asterisk 22 (scripts/pbx) and a small AMI client.

``pbx`` (session scope) starts a private PBX instance for this pytest session, provisioning the
Debian sid root first if it is missing (about a minute, once per machine; cached in
/var/cache/cti). If that is impossible the tests FAIL; set ``CTI_SKIP_PBX=1`` to skip them
instead (documented in dialplan/README.md). Mark tests that use it ``@pytest.mark.asterisk``.

Interface of the object ``pbx`` yields (kept stable for other test suites):

    pbx.ami_host, pbx.ami_port            AMI on 127.0.0.1 (a free port chosen per session)
    pbx.ami_username, pbx.ami_secret      the "cti" user with the PRODUCTION privileges of
                                          dialplan/manager.conf (what cti itself gets)
    pbx.admin_username, pbx.admin_secret  "cti-admin": read/write all (test drivers only)
    pbx.agi_port                          the dialplan's CTI_AGI_PORT (cti's FastAGI server; the
                                          shipped routing reads cti's CTI_ROUTE_STATE, not AGI)
    pbx.instance                          the scripts/pbx instance name
    pbx.cli(command) -> str               asterisk -rx COMMAND (raises on failure)
    pbx.set_global(name, value)           dialplan global variable (e.g. a SIM_* knob)
    pbx.reset_globals()                   back to the values in the config files
    pbx.restart()                         'core restart now', returns once fully booted
    pbx.kill9_and_start()                 SIGKILL Asterisk, start it again, fully booted
    pbx.stop() / pbx.start()              clean stop / start (the fixture restarts at teardown)

Simulated phones (dialplan/lab/extensions-local.conf): inbound calls are an Originate of
``Local/<ward number>@from-pstn`` with ``Context: citizen-sim``, ``Exten: talk`` (or ``dtmf``
with ``Variable: SIM_DTMF=<digits>``); operators are Local/101 and Local/102@operator-phones,
answering after SIM_OP_ANSWER_DELAY (1 s) unless SIM_OP<ext>/SIM_OPERATORS is ``noanswer``.

``ami`` (function scope) is an AmiClient logged in as the production-privileged cti user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import launch_chromium
from playwright.async_api import Browser, async_playwright

if TYPE_CHECKING:
    from sip_lab import Phones, SipLab

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pbx"
CACHE = Path(os.environ.get("CTI_PBX_CACHE", "/var/cache/cti"))

Event = dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pbx:
    instance: str
    ami_port: int
    agi_port: int
    ami_secret: str
    ami_host: str = "127.0.0.1"
    ami_username: str = "cti"
    admin_username: str = "cti-admin"
    admin_secret: str = ""
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """scripts/pbx ARGS for this instance; raises with Asterisk's own output on failure."""
        result = subprocess.run([str(SCRIPT), *args], env=self._env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"scripts/pbx {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def cli(self, command: str) -> str:
        return self.run("cli", command, timeout=30).stdout

    def cti_sections(self) -> dict[str, dict[str, object]]:
        """cti's settings sections pointed at this PBX (its AMI and our FastAGI port), for
        browser.operator_settings(tmp_path, port, **pbx.cti_sections())."""
        return {
            "ami": {"enabled": True, "host": self.ami_host, "port": self.ami_port, "username": self.ami_username,
                    "secret": self.ami_secret},
            "agi": {"enabled": True, "port": self.agi_port},
        }

    def set_global(self, name: str, value: str) -> None:
        self.cli(f"dialplan set global {name} {value}")

    def reset_globals(self) -> None:
        self.cli("dialplan reload")  # clearglobalvars=yes: globals back to the files' values

    def start(self) -> None:
        self.run("up")

    def stop(self) -> None:
        self.run("down", timeout=60)

    def restart(self) -> None:
        self.run("restart", timeout=120)

    def kill9_and_start(self) -> None:
        self.run("kill9", timeout=30)
        self.run("up", timeout=120)

    def is_running(self) -> bool:
        return subprocess.run([str(SCRIPT), "status"], env=self._env, capture_output=True).returncode == 0


def _reap_orphans() -> None:
    """Stop instances left by pytest sessions that were killed (their pid no longer exists)."""
    instances = CACHE / "asterisk-sid" / "cti"
    if not instances.is_dir():
        return
    for path in instances.glob("pytest-*"):
        owner = path.name.removeprefix("pytest-").removesuffix(".lock")
        if not path.is_dir() or not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        env = {**os.environ, "CTI_PBX_INSTANCE": path.name}
        subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(path, ignore_errors=True)
        (instances / f"{path.name}.lock").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def pbx() -> Iterator[Pbx]:
    if os.environ.get("CTI_SKIP_PBX") == "1":
        pytest.skip("CTI_SKIP_PBX=1: tests that need the local Asterisk PBX are skipped")
    _reap_orphans()
    with running_pbx(f"pytest-{os.getpid()}") as box:
        yield box


@contextlib.contextmanager
def running_pbx(instance: str, extra_env: dict[str, str] | None = None) -> Iterator[Pbx]:
    """A PBX instance of its own (free ports, a fresh secret), stopped and removed afterwards; fails
    the test run (never skips) when Asterisk cannot be started. Also used by tests/reliability.
    `extra_env`: more scripts/pbx settings, e.g. CTI_PBX_SIP=1 (tests/e2e/test_sip_phones.py)."""
    secret = uuid.uuid4().hex
    box = Pbx(instance=instance, ami_port=_free_port(), agi_port=_free_port(), ami_secret=secret)
    box.admin_secret = secret
    box._env = {
        **os.environ,
        "CTI_PBX_INSTANCE": instance,
        "CTI_PBX_AMI_PORT": str(box.ami_port),
        "CTI_PBX_AGI_PORT": str(box.agi_port),
        "CTI_PBX_AMI_SECRET": secret,
        **(extra_env or {}),
    }
    try:
        box.start()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.fail(f"the local Asterisk PBX could not be started (set CTI_SKIP_PBX=1 to skip):\n{exc}")
    try:
        yield box
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            box.stop()
        shutil.rmtree(CACHE / "asterisk-sid" / "cti" / instance, ignore_errors=True)
        with contextlib.suppress(OSError):
            (CACHE / "asterisk-sid" / "cti" / f"{instance}.lock").unlink()


# ---- a small AMI client for tests ---------------------------------------------------------------
class AmiError(Exception):
    pass


class AmiClient:
    """Just enough AMI for tests: log in, send actions, keep every event for wait_event()."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.banner = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._responses: dict[str, asyncio.Future[Event]] = {}
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()

    async def connect(self, host: str, port: int, username: str, secret: str) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self.banner = (await asyncio.wait_for(self._reader.readline(), 5)).decode().strip()
        self._task = asyncio.create_task(self._read_frames())
        response = await self.action("Login", Username=username, Secret=secret)
        if response.get("Response") != "Success":
            raise AmiError(f"login failed: {response.get('Message')}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read_frames(self) -> None:
        assert self._reader is not None
        frame: Event = {}
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    break
                line = raw.decode(errors="replace").rstrip("\r\n")
                if line:
                    key, _, value = line.partition(":")
                    frame.setdefault(key, value.removeprefix(" "))
                    continue
                if not frame:
                    continue  # Asterisk sometimes sends an extra CRLF
                action_id = frame.get("ActionID")
                if "Response" in frame and action_id in self._responses:
                    future = self._responses.pop(action_id)
                    if not future.done():
                        future.set_result(frame)
                if "Event" in frame:
                    self.events.append(frame)
                    self._changed.set()
                frame = {}
        finally:
            self.closed.set()
            self._changed.set()

    async def action(self, name: str, wait_s: float = 10, **fields: str) -> Event:
        assert self._writer is not None
        action_id = uuid.uuid4().hex
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._responses[action_id] = future
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            for one in value.split("\n") if key == "Variable" else [value]:
                lines.append(f"{key}: {one}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        return await asyncio.wait_for(future, wait_s)

    async def wait_event(self, predicate: Callable[[Event], bool], wait_s: float = 15, start: int = 0) -> Event:
        """The first event (from index `start`) matching `predicate`, waiting up to `wait_s` s."""
        async with asyncio.timeout(wait_s):
            index = start
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if predicate(event):
                        return event
                if self.closed.is_set():
                    raise AmiError("AMI connection closed while waiting")
                self._changed.clear()
                await self._changed.wait()

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [e for e in self.events if predicate(e)]


@pytest.fixture
async def ami(pbx: Pbx) -> AsyncIterator[AmiClient]:
    """A test driver that sees every event (cti-admin): the production "cti" user only gets the
    events cti reads, filtered by manager.conf's eventfilter lines."""
    client = AmiClient()
    await client.connect(pbx.ami_host, pbx.ami_port, pbx.admin_username, pbx.admin_secret)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def cti_ami(pbx: Pbx) -> AsyncIterator[AmiClient]:
    """Logged in as the production "cti" user (least privilege, filtered events)."""
    client = AmiClient()
    await client.connect(pbx.ami_host, pbx.ami_port, pbx.ami_username, pbx.ami_secret)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium (tests/e2e/browser.py launch_chromium), one per test, closed after it."""
    async with async_playwright() as p:
        b = await launch_chromium(p)
        try:
            yield b
        finally:
            await b.close()


# ---- the SIP lab (tests/e2e/sip_lab.py): a module sets SIP_LAB_NAME and uses these fixtures --------
# sip_lab.py loads this file as a module of its own, so it is imported here only when a fixture runs.


@pytest.fixture(scope="module")
def sip_lab(request: pytest.FixtureRequest) -> Iterator[SipLab]:
    """A PBX in SIP mode for the module (its instance named by the module's SIP_LAB_NAME)."""
    from sip_lab import running_sip_lab

    with running_sip_lab(request.module.SIP_LAB_NAME) as lab:
        yield lab


@pytest.fixture
async def phones(sip_lab: SipLab, tmp_path: Path) -> AsyncIterator[Phones]:
    """baresip trunk caller, operator and department phones, registered to the lab."""
    from sip_lab import running_phones

    async with running_phones(sip_lab, tmp_path) as box:
        yield box


@pytest.fixture
async def admin(sip_lab: SipLab) -> AsyncIterator[AmiClient]:
    """The lab's AMI as its admin (Originate of the trunk calls, bridges, events)."""
    from sip_lab import admin_ami

    async with admin_ami(sip_lab) as client:
        yield client
