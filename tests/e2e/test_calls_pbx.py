"""The local PBX itself and the outbound contexts: click-to-call, transfers to departments,
the cti AMI user's least privileges, loopback-only listeners, restart and crash recovery,
and scripts/pbx's behaviour (idempotent, concurrent, plain failures)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixtures' types (tests/e2e/conftest.py); pytest provides the objects
    from conftest import AmiClient, Pbx

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pbx"
CACHE = Path(os.environ.get("CTI_PBX_CACHE", "/var/cache/cti"))
CITIZEN = "0312345678"
WARD_NUMBER = "0301110000"


async def originate(ami: AmiClient, **fields: str) -> str:
    channel_id = f"test-{uuid.uuid4().hex[:12]}"
    response = await ami.action("Originate", ChannelId=channel_id, Async="true", **fields)
    assert response["Response"] == "Success", response
    return channel_id


# ---- click-to-call ------------------------------------------------------------------------------
async def test_click_to_call_rings_staff_first_then_the_citizen_with_ward_caller_id(ami: AmiClient) -> None:
    staff_leg = await originate(
        ami,
        Channel="Local/101@operator-phones",
        Context="outbound-callback",
        Exten=CITIZEN,
        Priority="1",
        CallerID='"cti" <101>',
        Variable="CTI_CALLBACK_ID=cb-42",
        Timeout="15000",
    )
    answered = await ami.wait_event(lambda e: e.get("Event") == "OriginateResponse" and e.get("Uniqueid") == staff_leg)
    assert answered["Response"] == "Success"
    dial = await ami.wait_event(lambda e: e.get("Event") == "DialBegin" and e.get("Uniqueid") == staff_leg, wait_s=10)
    staff_up = ami.matching(
        lambda e: e.get("Event") == "Newstate" and e.get("Uniqueid") == staff_leg and e.get("ChannelStateDesc") == "Up"
    )
    assert staff_up, "the staff phone answered"
    assert ami.events.index(staff_up[0]) < ami.events.index(dial), "the citizen is dialled only after staff answer"
    assert dial["DestChannel"].startswith(f"Local/{CITIZEN}@pstn-sim")
    assert dial["CallerIDNum"] == WARD_NUMBER  # what the citizen's phone displays
    citizen = await ami.action("Getvar", Channel=dial["DestChannel"], Variable="CTI_CALLBACK_ID")
    assert citizen.get("Value") == "cb-42"
    end = await ami.wait_event(lambda e: e.get("Event") == "DialEnd" and e.get("Uniqueid") == staff_leg)
    assert end["DialStatus"] == "ANSWER"
    await ami.wait_event(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == staff_leg, wait_s=20)


async def test_click_to_call_busy_citizen(ami: AmiClient) -> None:
    staff_leg = await originate(
        ami,
        Channel="Local/102@operator-phones",
        Context="outbound-callback",
        Exten=CITIZEN,
        Priority="1",
        Variable="CTI_CALLBACK_ID=cb-43\n__SIM_CITIZEN=busy",
        Timeout="15000",
    )
    end = await ami.wait_event(lambda e: e.get("Event") == "DialEnd" and e.get("Uniqueid") == staff_leg)
    assert end["DialStatus"] == "BUSY"
    ended = await ami.wait_event(
        lambda e: e.get("Event") == "Newexten" and e.get("Uniqueid") == staff_leg and "ended" in e.get("AppData", "")
    )
    assert "cb-43" in ended["AppData"]


# ---- transfers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("department", ["201", "205"])
async def test_department_extension_answers(ami: AmiClient, department: str) -> None:
    leg = await originate(
        ami, Channel=f"Local/{department}@departments", Context="citizen-sim", Exten="talk", Priority="1"
    )
    begin = await ami.wait_event(lambda e: e.get("Event") == "DialBegin" and e.get("Linkedid") == leg)
    assert begin["DestChannel"].startswith(f"Local/{department}@department-phones")
    end = await ami.wait_event(lambda e: e.get("Event") == "DialEnd" and e.get("Linkedid") == leg)
    assert end["DialStatus"] == "ANSWER"


async def test_unknown_department_does_not_exist(pbx: Pbx) -> None:
    assert "_20[1-5]" in pbx.cli("dialplan show departments")
    assert "There is no existence of 299@departments extension" in pbx.cli("dialplan show 299@departments")


# ---- AMI least privilege -----------------------------------------------------------------------
async def test_cti_ami_user_has_what_cti_needs_and_no_more(cti_ami: AmiClient) -> None:
    ami = cti_ami
    assert (await ami.action("Ping"))["Response"] == "Success"
    assert (await ami.action("QueueStatus", Queue="operators"))["Response"] == "Success"
    assert (await ami.action("CoreShowChannels"))["Response"] == "Success"
    assert (await ami.action("Getvar", Variable="CTI_QUEUE"))["Value"] == "operators"
    for action, fields in [
        ("Command", {"Command": "core show version"}),
        ("GetConfig", {"Filename": "manager.conf"}),
        ("UpdateConfig", {"SrcFilename": "manager.conf", "DstFilename": "manager.conf"}),
        ("Reload", {}),
    ]:
        response = await ami.action(action, **fields)
        assert response["Response"] == "Error", (action, response)
        assert "Permission denied" in response.get("Message", ""), (action, response)


# ---- listeners -----------------------------------------------------------------------------------
def test_asterisk_listens_on_loopback_only(pbx: Pbx) -> None:
    if shutil.which("ss") is None:
        pytest.fail("ss (iproute2) is needed to list listening sockets")
    status = pbx.run("status").stdout  # "running pid=N ami=..."
    pid = re.search(r"pid=(\d+)", status)
    assert pid, status
    out = subprocess.run(["ss", "-H", "-lntup"], capture_output=True, text=True, check=True).stdout
    # this PBX's sockets only: other Asterisks on the machine (another engineer's SIP lab) are not ours
    mine = [line for line in out.splitlines() if '"asterisk"' in line and f"pid={pid.group(1)}," in line]
    assert any(f"127.0.0.1:{pbx.ami_port}" in line for line in mine), mine
    for line in mine:
        local = line.split()[4]
        assert re.match(r"^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$", local), f"asterisk listens beyond loopback: {line}"


# ---- restart and crash ---------------------------------------------------------------------------
async def test_restart_sends_shutdown_and_comes_back(pbx: Pbx, ami: AmiClient) -> None:
    await asyncio.to_thread(pbx.restart)
    shutdown = await ami.wait_event(lambda e: e.get("Event") == "Shutdown", wait_s=10)
    assert shutdown["Restart"] == "True"
    assert "System uptime" in pbx.cli("core show uptime")
    assert "operators" in pbx.cli("queue show operators")


async def test_kill9_and_start(pbx: Pbx) -> None:
    pid_file = CACHE / "asterisk-sid" / "cti" / pbx.instance
    before = (pid_file / "run" / "asterisk.pid").read_text().strip()
    await asyncio.to_thread(pbx.kill9_and_start)
    after = (pid_file / "run" / "asterisk.pid").read_text().strip()
    assert before != after
    assert pbx.is_running()
    assert "Local/101@operator-phones" in pbx.cli("queue show operators")


# ---- scripts/pbx ---------------------------------------------------------------------------------
def run_pbx(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def instance_env(name: str, **extra: str) -> dict[str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ami_port = str(s.getsockname()[1])
    return {**os.environ, "CTI_PBX_INSTANCE": name, "CTI_PBX_AMI_PORT": ami_port, **extra}


def remove_instance(env: dict[str, str]) -> None:
    run_pbx(env, "down")
    shutil.rmtree(CACHE / "asterisk-sid" / "cti" / env["CTI_PBX_INSTANCE"], ignore_errors=True)
    (CACHE / "asterisk-sid" / "cti" / f"{env['CTI_PBX_INSTANCE']}.lock").unlink(missing_ok=True)


def test_up_twice_and_concurrently_gives_one_asterisk(pbx: Pbx) -> None:
    env = instance_env(f"pytest-twice-{os.getpid()}")
    try:
        procs = [subprocess.Popen([str(SCRIPT), "up"], env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
        pids = {re.search(r"pid=(\d+)", out).group(1) for out in outputs}  # type: ignore[union-attr]
        assert len(pids) == 1, outputs
        again = run_pbx(env, "up")
        assert again.returncode == 0 and f"pid={pids.pop()}" in again.stdout
        assert run_pbx(env, "status").returncode == 0
        assert run_pbx(env, "down").returncode == 0
        status = run_pbx(env, "status")
        assert (status.returncode, status.stdout.strip()) == (3, "stopped")
        assert run_pbx(env, "down").stdout.strip() == "stopped"  # stopping twice is fine
    finally:
        remove_instance(env)


def test_broken_config_fails_with_asterisks_own_error(pbx: Pbx, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "dialplan", tmp_path / "dialplan")
    modules = tmp_path / "dialplan" / "modules.conf"
    modules.write_text(modules.read_text().replace("load => app_queue.so", "require => app_queue_typo.so"))
    env = instance_env(f"pytest-broken-{os.getpid()}", CTI_PBX_DIALPLAN=str(tmp_path / "dialplan"))
    try:
        result = run_pbx(env, "up")
        assert result.returncode != 0
        assert "app_queue_typo" in result.stderr, result.stderr
        assert "exited during start-up" in result.stderr
    finally:
        remove_instance(env)


def test_unreachable_mirror_is_one_plain_line(tmp_path: Path) -> None:
    env = {**os.environ, "CTI_PBX_CACHE": str(tmp_path), "CTI_PBX_MIRROR": "http://127.0.0.1:9/debian"}
    result = run_pbx(env, "provision", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "pbx: cannot reach the Debian mirror http://127.0.0.1:9/debian (needed once to build the Asterisk sid root)"
    ]
    assert not (tmp_path / "asterisk-sid").exists()


def test_production_module_list_loads_completely(pbx: Pbx, tmp_path: Path) -> None:
    """dialplan/modules.conf as shipped (SIP included; the lab normally removes SIP) loads with no
    module declining: every dependency is listed."""
    shutil.copytree(ROOT / "dialplan", tmp_path / "dialplan")
    (tmp_path / "dialplan" / "lab" / "modules-local.conf").write_text("load => app_senddtmf.so\n")
    env = instance_env(f"pytest-modules-{os.getpid()}", CTI_PBX_DIALPLAN=str(tmp_path / "dialplan"))
    try:
        up = run_pbx(env, "up")
        assert up.returncode == 0, up.stderr
        channel_types = run_pbx(env, "cli", "core show channeltypes").stdout
        assert re.search(r"^PJSIP\s", channel_types, re.MULTILINE), channel_types
        listed = re.findall(r"^load => (\S+)\.so", (ROOT / "dialplan" / "modules.conf").read_text(), re.MULTILINE)
        for module in listed:
            shown = run_pbx(env, "cli", f"module show like {module}").stdout
            assert re.search(rf"^{module}\.so\s.*Running", shown, re.MULTILINE), (module, shown)
        log = (CACHE / "asterisk-sid" / "cti" / env["CTI_PBX_INSTANCE"] / "log" / "messages.log").read_text()
        assert "declined to load" not in log and "Failed to resolve dependencies" not in log
    finally:
        remove_instance(env)
