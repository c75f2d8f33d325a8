"""ami_ctx in a real aiohttp app: readiness, tracker domain events to listeners, metrics, logs
without personal data, and everything stopped at cleanup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from ami_replay_server import AmiReplayServer, load_capture
from prometheus_client import REGISTRY
from test_ami_link import eventually

from cti import keys
from cti.app import put_settings
from cti.config import load_settings
from cti.core.clock import TOKYO, fixed_clock
from cti.core.logs import JsonLineFormatter
from cti.core.readiness import Readiness
from telephony.ami.link import LinkState
from telephony.plugin import Telephony, ami_ctx, start_ami_link

CLOCK = fixed_clock(datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO))


@pytest.fixture
async def server() -> AsyncIterator[AmiReplayServer]:
    srv = AmiReplayServer()
    await srv.start()
    yield srv
    await srv.close()


def make_app(server: AmiReplayServer, tmp_path: Path) -> web.Application:
    settings = load_settings(
        None,
        {
            "CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"),
            "CTI_AMI__PORT": str(server.port),
            "CTI_AMI__SECRET": "s3cret",
            "CTI_AMI__RECONNECT_INITIAL": "0.05",
            "CTI_AGI__ENABLED": "false",
        },
    )
    app = web.Application()
    put_settings(app, settings)
    app[keys.CLOCK] = CLOCK
    app[keys.READINESS] = Readiness()
    app.cleanup_ctx.append(ami_ctx)
    app.on_startup.append(start_ami_link)  # as create_app: after every listener subscribed
    return app


async def test_ami_ctx_runs_the_link_feeds_the_tracker_and_stops(
    server: AmiReplayServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    capture = load_capture("04-outbound-callback.txt")
    server.scenario = capture
    app = make_app(server, tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    telephony: Telephony = app[keys.AMI]
    domain: list[Any] = []
    telephony.domain_listeners.append(domain.extend)

    async def broken_async_listener(events: Any) -> None:
        raise RuntimeError("listener bug")

    telephony.domain_listeners.append(broken_async_listener)
    try:
        await telephony.client.wait_connected(5)
        ready, report = app[keys.READINESS].report()
        assert ready and report["ami"]["state"] == "connected"
        assert app[keys.TRACKER] is telephony.tracker
        hangups_before = REGISTRY.get_sample_value("cti_ami_events_total", {"event": "Hangup"}) or 0.0
        attempt = await telephony.control.originate_callback("cb-77", "Local/101@operator-phones", "0312345678")
        assert attempt.action_id in server.current.id_map.values()
        await asyncio.wait_for(server.replays_done.wait(), 5)
        await eventually(lambda: telephony.control.callback_status("cb-77").state.value == "ended")  # type: ignore[union-attr]
        await eventually(lambda: any(d.type == "callback_ended" for d in domain))
        assert [d.type for d in domain] == [
            "callback_ringing_staff",
            "callback_staff_answered",
            "callback_dialing_citizen",
            "callback_citizen_answered",
            "callback_ended",
        ]
        assert (REGISTRY.get_sample_value("cti_ami_events_total", {"event": "Hangup"}) or 0.0) == hangups_before + 4
        assert telephony.client.connected  # the broken listener changed nothing
    finally:
        await runner.cleanup()
    assert telephony.client.status().state is LinkState.STOPPED
    assert "ami" not in app[keys.READINESS].checks
    # No phone number in any log line, formatted as production formats them.
    formatter = JsonLineFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("callback_originate" in line for line in lines)
    for line in lines:
        assert "0312345678" not in line and "0301110000" not in line, line


async def test_ami_ctx_does_nothing_when_disabled(tmp_path: Path) -> None:
    settings = load_settings(None, {"CTI_STORE__PATH": str(tmp_path / "x.sqlite3"), "CTI_AMI__ENABLED": "false"})
    app = web.Application()
    put_settings(app, settings)
    app[keys.CLOCK] = CLOCK
    app[keys.READINESS] = Readiness()
    app.cleanup_ctx.append(ami_ctx)
    app.on_startup.append(start_ami_link)  # as create_app: after every listener subscribed
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert keys.AMI not in app and app[keys.READINESS].checks == {}
    finally:
        await runner.cleanup()
