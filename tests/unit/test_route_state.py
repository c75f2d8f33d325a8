"""The routing state cti keeps in Asterisk (telephony/route_state.py): its value, and the publisher's
refresh, failure and calendar-change behaviour against a fake AMI client."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import fixed_clock
from telephony.agi.route import route_variables
from telephony.route_state import (
    MAX_AGE_SECONDS,
    REFRESH_SECONDS,
    STATE_VARIABLE,
    RouteStatePublisher,
    parse_route_state,
    route_state_value,
)

DAY = datetime.fromisoformat("2026-12-28T10:00:00+09:00")
NIGHT = datetime.fromisoformat("2026-12-28T23:30:00+09:00")
STAMP = 1_796_000_000


def calendars() -> Calendars:
    return Calendars.from_settings(CalendarSettings())


def test_open_state_carries_route_and_office_only() -> None:
    assert route_state_value(calendars(), DAY, STAMP) == f"{STAMP}/open/open///"


def test_closed_state_carries_reason_and_next_opening() -> None:
    value = route_state_value(calendars(), NIGHT, STAMP)
    assert value == f"{STAMP}/closed/closed/night/1798498800/2026-12-29T08:00:00+09:00"
    assert datetime.fromisoformat(value.split("/")[5]).timestamp() == int(value.split("/")[4])


def test_state_fields_are_the_fastagi_contract() -> None:
    cal = calendars()
    cal.set_emergency("停電")
    for at in (DAY, NIGHT):
        parsed = parse_route_state(route_state_value(cal, at, STAMP))
        assert parsed.pop("stamp") == str(STAMP)
        assert parsed == route_variables(cal, at)  # emergency: no next opening at all


@pytest.mark.parametrize("value", ["", "garbage", "x/open/open///", "1/open/open//"])
def test_malformed_state_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_route_state(value)


class FakeAmi:
    def __init__(self) -> None:
        self.connected = True
        self.sent: list[Mapping[str, str]] = []
        self.fail: Exception | None = None

    async def send_action(self, action: Mapping[str, str], *, within: float | None = None) -> Any:
        if self.fail is not None:
            raise self.fail
        self.sent.append(action)
        return None


async def test_publish_stamps_with_the_wall_clock_and_decides_with_the_calendar_clock() -> None:
    ami = FakeAmi()
    publisher = RouteStatePublisher(ami, calendars(), fixed_clock(NIGHT), wall=lambda: STAMP + 0.7)
    assert await publisher.publish_once()
    [action] = ami.sent
    assert action["Action"] == "Setvar" and "Channel" not in action  # a global variable
    assert action["Variable"] == STATE_VARIABLE
    assert action["Value"].startswith(f"{STAMP}/closed/closed/night/")
    assert publisher.readiness() == (True, {"age_s": 0.7, "last_error": None})


async def test_refused_refresh_is_not_ready_and_link_trouble_is_left_to_the_ami_check() -> None:
    ami = FakeAmi()
    now = [float(STAMP)]
    publisher = RouteStatePublisher(ami, calendars(), fixed_clock(DAY), wall=lambda: now[0],
                                    link_errors=(TimeoutError,))
    ami.connected = False
    assert not await publisher.publish_once()
    assert publisher.readiness()[0] is True  # the "ami" readiness check reports the link
    ami.connected = True
    ami.fail = PermissionError("Permission denied")
    assert not await publisher.publish_once()
    assert publisher.readiness() == (False, {"age_s": None, "last_error": "PermissionError"})
    ami.fail = TimeoutError()  # the link's trouble: the "ami" check says so, once it notices
    assert not await publisher.publish_once()
    assert publisher.readiness() == (True, {"age_s": None, "last_error": "TimeoutError"})
    ami.fail = None
    assert await publisher.publish_once()
    now[0] += MAX_AGE_SECONDS + 1
    assert publisher.readiness() == (True, {"age_s": MAX_AGE_SECONDS + 1.0, "last_error": None})


async def test_calendar_change_republishes_at_once_and_stop_unsubscribes() -> None:
    ami = FakeAmi()
    cal = calendars()
    publisher = RouteStatePublisher(ami, cal, fixed_clock(DAY), interval=3600)
    publisher.start()
    try:
        await _until(lambda: len(ami.sent) == 1)
        cal.set_emergency("庁舎停電")
        await _until(lambda: len(ami.sent) == 2)
        assert ami.sent[-1]["Value"].endswith("/closed/open/emergency//")  # the office counters stay open
    finally:
        await publisher.stop()
    cal.set_emergency(None)
    await asyncio.sleep(0.05)
    assert len(ami.sent) == 2


async def _until(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 2 s")


def test_the_dialplan_allows_the_age_cti_refreshes_for() -> None:
    """extensions.conf's CTI_STATE_MAX_AGE is the age this module plans for, several refreshes long."""
    conf = (Path(__file__).resolve().parents[2] / "dialplan" / "extensions.conf").read_text(encoding="utf-8")
    [line] = [x for x in conf.splitlines() if x.startswith("CTI_STATE_MAX_AGE=")]
    assert int(line.split("=", 1)[1]) == MAX_AGE_SECONDS
    assert MAX_AGE_SECONDS >= 4 * REFRESH_SECONDS
    assert "${CTI_STATE_MAX_AGE}" in conf and STATE_VARIABLE in conf
