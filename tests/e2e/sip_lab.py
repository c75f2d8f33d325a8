"""The SIP lab of the end-to-end tests: a PBX of its own in SIP mode (scripts/pbx with CTI_PBX_SIP=1:
the shipped dialplan/pjsip.conf with its SITE lines set for 127.0.0.1, Japanese prompts generated from
dialplan/prompts/ja.tsv) and real SIP user agents (Debian's baresip, sip_phone.py) registered to it.

Who is who: ``trunk`` is the carrier (the only user agent at 127.0.0.1:<trunk port>, which the
pstn-trunk identify matches): the citizen's calls come from it with caller ID 0312345678 and RFC 4733
DTMF, and click-to-call rings it. ``op101`` / ``op102`` are operator phones (queue members PJSIP/101,
PJSIP/102, seats 席101 / 席102) that ring and are answered by the test; ``dept201`` is 戸籍住民課's
phone, which answers by itself. Used by test_sip_phones.py and test_sip_operator_screen.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sip_phone import SipPhone, free_sip_port, free_udp_port

if TYPE_CHECKING:
    from conftest import AmiClient, Pbx


def _e2e_conftest() -> Any:
    """tests/e2e/conftest.py as a module of its own name (as tests/reliability loads it): the name
    `conftest` belongs to whichever conftest pytest imported last."""
    name = "cti_e2e_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("conftest.py"))
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


_e2e = _e2e_conftest()
CACHE: Path = _e2e.CACHE
ROOT: Path = _e2e.ROOT
WARD_NUMBER = "0301110000"
CALLER = "0312345678"


@dataclass
class SipLab:
    pbx: Pbx
    sip_port: int
    trunk_port: int
    secret: str

    @property
    def home(self) -> Path:
        return CACHE / "asterisk-sid" / "cti" / self.pbx.instance

    def log(self) -> str:
        return (self.home / "log" / "messages.log").read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_sip_lab(name: str) -> Iterator[SipLab]:
    """A SIP-mode PBX instance `pytest-<pid>-<name>` for a test module; fails (never skips) without
    baresip or sox, skips only with CTI_SKIP_PBX=1 like every test that needs Asterisk."""
    if os.environ.get("CTI_SKIP_PBX") == "1":
        pytest.skip("CTI_SKIP_PBX=1: tests that need the local Asterisk PBX are skipped")
    if shutil.which("baresip") is None or shutil.which("sox") is None:
        pytest.fail("baresip and sox are needed (apt-get install baresip-core sox; scripts/setup does it)")
    # Fixed ports below the kernel's ephemeral range and outside both RTP ranges (Asterisk 10000-19999
    # in the lab's rtp.conf, baresip 20000-29998), so no other socket takes the trunk's port between tests
    # (the trunk user agent is identified by it: identify match = 127.0.0.1:<port>).
    sip_port, trunk_port = free_udp_port(30000, 32700), free_sip_port()
    while trunk_port == sip_port:
        trunk_port = free_sip_port()
    secret = f"lab-{uuid.uuid4().hex[:12]}"
    extra = {"CTI_PBX_SIP": "1", "CTI_PBX_SIP_PORT": str(sip_port), "CTI_PBX_TRUNK_PORT": str(trunk_port),
             "CTI_PBX_SIP_SECRET": secret}
    with _e2e.running_pbx(f"pytest-{os.getpid()}-{name}", extra) as pbx:
        yield SipLab(pbx, sip_port, trunk_port, secret)


@dataclass
class Phones:
    op101: SipPhone
    op102: SipPhone
    dept201: SipPhone
    trunk: SipPhone

    def all(self) -> list[SipPhone]:
        return [self.op101, self.op102, self.dept201, self.trunk]


@contextlib.asynccontextmanager
async def running_phones(lab: SipLab, workdir: Path) -> AsyncIterator[Phones]:
    def phone(name: str, user: str, tone: float, **kw: Any) -> SipPhone:
        return SipPhone(name, workdir, user=user, pbx_port=lab.sip_port, password=f"{lab.secret}-{user}",
                        tone_hz=tone, **kw)

    box = Phones(
        op101=phone("op101", "101", 1000),
        op102=phone("op102", "102", 1200),
        dept201=phone("dept201", "201", 700, auto_answer=True),
        trunk=SipPhone("trunk", workdir, user=CALLER, pbx_port=lab.sip_port, register=False,
                       sip_port=lab.trunk_port, auto_answer=True, tone_hz=300),
    )
    started: list[SipPhone] = []
    try:
        for one in box.all():
            await one.start()
            started.append(one)
        yield box
    finally:
        for one in started:
            await one.stop()


@contextlib.asynccontextmanager
async def admin_ami(lab: SipLab) -> AsyncIterator[AmiClient]:
    """A test driver that sees every event (cti-admin)."""
    client = _e2e.AmiClient()
    await client.connect(lab.pbx.ami_host, lab.pbx.ami_port, lab.pbx.admin_username, lab.pbx.admin_secret)
    try:
        yield client
    finally:
        await client.close()


def is_event(name: str, **fields: str) -> Any:
    return lambda e: e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())


async def trunk_call(admin: AmiClient, phones: Phones, dtmf: str | None = None) -> str:
    """The carrier's user agent calls the ward's number; returns Asterisk's channel of that call.
    With `dtmf`, keys it in (RFC 4733) once the IVR menu plays."""
    mark = len(admin.events)
    await phones.trunk.dial(WARD_NUMBER)
    await phones.trunk.wait_event("CALL_ESTABLISHED")
    created = await admin.wait_event(
        lambda e: e.get("Event") == "Newchannel" and e.get("Channel", "").startswith("PJSIP/pstn-trunk-"), start=mark)
    assert created["CallerIDNum"] == CALLER  # the caller ID from the trunk's From header
    if dtmf is not None:
        await admin.wait_event(
            lambda e: is_event("Newexten", Channel=created["Channel"])(e)
            and e.get("Application", "").lower() == "background" and e.get("AppData", "").startswith("cti/menu"),
            start=mark,
        )
        await asyncio.sleep(1.0)  # the caller listens to the first words, then presses the key
        await phones.trunk.send_dtmf(dtmf)
    return created["Channel"]


async def rtp_counts(admin: AmiClient, channel: str) -> dict[str, str]:
    """Asterisk's RTCP view of a channel: rxcount/txcount are RTP packets received / sent."""
    answer = await admin.action("Getvar", Channel=channel, Variable="CHANNEL(rtcp,all)")
    assert answer.get("Response") == "Success", answer
    return dict(part.split("=", 1) for part in answer.get("Value", "").split(";") if "=" in part)


async def rtp_source(admin: AmiClient, channel: str) -> str:
    answer = await admin.action("Getvar", Channel=channel, Variable="CHANNEL(rtp,src)")
    return answer.get("Value", "")


def speech_level_db(path: Path) -> tuple[float, float]:
    """(RMS level in dBFS, length in seconds) of a WAV, as sox measures it."""
    out = subprocess.run(["sox", str(path), "-n", "stats"], capture_output=True, text=True, check=True).stderr
    rms = float(re.search(r"RMS lev dB\s+(-?[\d.]+|-inf)", out).group(1))  # type: ignore[union-attr]
    length = float(re.search(r"Length s\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rms, length


def played(log: str, name: str) -> bool:
    """Asterisk's own log line for a prompt played from sounds/ja."""
    return re.search(rf"Playing '{re.escape(name)}\.\w+' \(language 'ja'\)", log) is not None


def only_japanese_prompts(log: str) -> list[str]:
    """The prompts Asterisk played to SIP channels so far; fails if any was not one of ours (cti/...)
    in Japanese, i.e. a stock English fallback reached a caller."""
    playing = re.findall(r"<PJSIP/[^>]+> Playing '([^']+)\.\w+' \(language '(\w+)'\)", log)
    others = sorted({(name, language) for name, language in playing if not name.startswith("cti/") or language != "ja"})
    assert others == [], f"not our Japanese prompts: {others}"
    return [name for name, _language in playing]


def asterisk_sockets(pbx: Pbx) -> list[str]:
    pid = (CACHE / "asterisk-sid" / "cti" / pbx.instance / "run" / "asterisk.pid").read_text().strip()
    out = subprocess.run(["ss", "-H", "-lnupt"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"pid={pid}," in line]


# pjproject's DNS resolver (created by res_pjsip at load, config_system.c, whenever the system has a
# nameserver; no setting turns it off) holds one unconnected UDP socket per address family on the
# wildcard address and a random port, to receive answers to the queries it sends.
RESOLVER_SOCKET = re.compile(r"^udp\s+\S+\s+\d+\s+\d+\s+(0\.0\.0\.0|\[::\]):\d+\s")


def assert_loopback_only(pbx: Pbx, sip_port: int) -> list[str]:
    mine = asterisk_sockets(pbx)
    assert any(f"127.0.0.1:{sip_port} " in line for line in mine), mine
    assert any(f"127.0.0.1:{pbx.ami_port} " in line for line in mine), mine
    resolver = [line for line in mine if RESOLVER_SOCKET.match(line)]
    assert len(resolver) <= 2, resolver
    for line in mine:
        if line in resolver:
            continue
        local = line.split()[4]
        assert re.match(r"^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$", local), f"asterisk listens beyond loopback: {line}"
    return mine


