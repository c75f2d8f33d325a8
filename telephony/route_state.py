"""The routing decision, kept in Asterisk so that a call never waits on cti.

Asterisk's FastAGI client has no read timeout: with cti frozen (SIGSTOP, a stuck event loop) the
kernel still accepts the connection and a caller sat silent in AGI() for 39 s. So the shipped
dialplan does not ask cti at all. cti publishes its current decision into one Asterisk global
variable over AMI (``Setvar`` without a Channel; the production user's write=call allows it),
every REFRESH_SECONDS and at once on every calendar change:

    CTI_ROUTE_STATE = <stamp>/<route>/<office>/<closed reason>/<next open epoch>/<next open ISO 8601>
    e.g.  1795822481/open/closed////     1795822481/closed/closed/night/1795906800/2026-12-29T08:00:00+09:00

``stamp`` is the Unix second of the publication (wall clock: Asterisk compares it with its own
${EPOCH} on the same host). One variable, so a call reads every field of one publication (never
the route of one and the reason of another) and a refresh is one AMI action. from-pstn reads it
without blocking: fresh (``-2 <= ${EPOCH} - stamp <= CTI_STATE_MAX_AGE``, 5 s) -> route from it;
stale, absent or malformed -> the static fallback schedule. The fields are the FastAGI contract's
variables (telephony/agi/route.py decides both), empty when that variable would not be set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from aiohttp import web
from prometheus_client import Counter, Gauge

from cti.calendar import keys as calendar_keys
from cti.calendar.rules import Calendars
from cti.core import keys as core_keys
from cti.core.clock import Clock
from cti.core.logs import log_event
from telephony import keys as telephony_keys
from telephony.agi.route import route_variables
from telephony.ami.actions import AmiConnectionLost, AmiNotConnected, AmiTimeout

logger = logging.getLogger(__name__)

STATE_VARIABLE: Final = "CTI_ROUTE_STATE"
FIELDS: Final = ("stamp", "CTI_ROUTE", "CTI_OFFICE", "CTI_CLOSED_REASON", "CTI_NEXT_OPEN_EPOCH", "CTI_NEXT_OPEN")
# How often the state is republished, and (dialplan global CTI_STATE_MAX_AGE) how old it may be:
# one refresh a second leaves four seconds for a busy cti before calls take the fallback.
REFRESH_SECONDS: Final = 1.0
MAX_AGE_SECONDS: Final = 5
# A Setvar not answered in this long is abandoned; the next refresh tries again.
ACTION_TIMEOUT_SECONDS: Final = 2.0
NOT_CONNECTED: Final = "ami_not_connected"

PUBLISHED_AT = Gauge("cti_route_state_published_timestamp_seconds",
                     "Unix time of the last routing state Asterisk acknowledged")
PUBLISH_FAILURES = Counter("cti_route_state_publish_failures_total",
                           "Routing state refreshes that failed (link down, refused, no answer)")


class ActionSender(Protocol):
    """What the publisher needs of the AMI client (telephony.ami.link.AmiClient)."""

    @property
    def connected(self) -> bool: ...

    async def send_action(self, action: Mapping[str, str], *, within: float | None = None) -> Any: ...


def route_state_value(calendars: Calendars, at: datetime, stamp: int) -> str:
    """The CTI_ROUTE_STATE value for the decision at `at`, published at Unix second `stamp`."""
    variables = route_variables(calendars, at)
    return "/".join([str(stamp), *(variables.get(name, "") for name in FIELDS[1:])])


def parse_route_state(value: str) -> dict[str, str]:
    """The fields of a CTI_ROUTE_STATE value (as the dialplan cuts it at '/'); empty ones left out."""
    parts = value.split("/")
    if len(parts) != len(FIELDS) or not parts[0].isdigit():
        raise ValueError(f"not a routing state: {value!r}")
    return {name: part for name, part in zip(FIELDS, parts, strict=True) if part}


class RouteStatePublisher:
    """Keeps CTI_ROUTE_STATE fresh in Asterisk while cti runs.

    `clock` decides (the calendars' notion of now, injectable); `wall` stamps (Unix seconds, the
    same clock Asterisk's ${EPOCH} reads). A failed refresh is counted and logged once per outage,
    never fatal: meanwhile the state goes stale and the dialplan routes by its static schedule.
    """

    def __init__(
        self,
        ami: ActionSender,
        calendars: Calendars,
        clock: Clock,
        *,
        wall: Callable[[], float] = time.time,
        interval: float = REFRESH_SECONDS,
        link_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._ami = ami
        self._calendars = calendars
        self._clock = clock
        self._wall = wall
        self._interval = interval
        self._link_errors = link_errors  # the link's trouble (timeout, lost), not a refusal
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.last_value: str | None = None
        self.last_published: float | None = None  # wall time Asterisk acknowledged the last value
        self.failing: str | None = None  # why the last refresh failed (None when it succeeded)
        self.refused = False  # ... and whether Asterisk refused it (rather than the link failing)
        self.published = 0

    def nudge(self) -> None:
        """Publish now (a calendar change) instead of at the next tick."""
        self._wake.set()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("RouteStatePublisher already started")
        self._unsubscribe = self._calendars.on_change(self.nudge)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="route-state")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Not ready when Asterisk refuses the refresh (e.g. the AMI user lacks write=call). A link
        that is down, lost or silent is the "ami" check's business (and the moment between a
        reconnect and the next refresh is no failure of ours)."""
        age = None if self.last_published is None else round(self._wall() - self.last_published, 1)
        return not self.refused, {"age_s": age, "last_error": self.failing}

    async def publish_once(self) -> bool:
        """One refresh; True when Asterisk acknowledged it."""
        if not self._ami.connected:
            self._failed(NOT_CONNECTED, refused=False)
            return False
        stamp = int(self._wall())
        value = route_state_value(self._calendars, self._clock(), stamp)
        try:
            await self._ami.send_action(
                {"Action": "Setvar", "Variable": STATE_VARIABLE, "Value": value}, within=ACTION_TIMEOUT_SECONDS
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused (no write=call), timed out, link lost: the next tick retries
            self._failed(type(exc).__name__, refused=not isinstance(exc, self._link_errors))
            return False
        if self.failing is not None or self.last_value is None:
            log_event(logger, "route_state_published", route=value.split("/")[1], recovered_from=self.failing)
        elif value.split("/")[1:] != self.last_value.split("/")[1:]:
            log_event(logger, "route_state_changed", route=value.split("/")[1])
        self.failing = None
        self.refused = False
        self.last_value = value
        self.last_published = float(stamp)
        self.published += 1
        PUBLISHED_AT.set(stamp)
        return True

    def _failed(self, reason: str, *, refused: bool) -> None:
        PUBLISH_FAILURES.inc()
        self.refused = refused
        if self.failing != reason:
            level = logging.INFO if reason == NOT_CONNECTED else logging.WARNING  # the link logs its own
            log_event(logger, "route_state_not_published", level, reason=reason,
                      effect="calls take the static fallback schedule once the state is stale")
        self.failing = reason

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.publish_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the refreshes
                log_event(logger, "route_state_failed", logging.ERROR, exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):  # not wait_for: see telephony/ami/link.py _send
                    await self._wake.wait()


ROUTE_STATE: web.AppKey[RouteStatePublisher] = web.AppKey("route_state", RouteStatePublisher)


async def route_state_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the AMI link's context: publish the routing state while the app runs (readiness
    "route_state"). Nothing to do when the AMI link is disabled."""
    telephony = app.get(telephony_keys.AMI)
    if telephony is None:
        yield
        return
    publisher = RouteStatePublisher(telephony.client, app[calendar_keys.CALENDARS], app[core_keys.CLOCK],
                                    link_errors=(AmiTimeout, AmiNotConnected, AmiConnectionLost))
    app[ROUTE_STATE] = publisher
    app[core_keys.READINESS].register("route_state", publisher.readiness)
    publisher.start()
    try:
        yield
    finally:
        app[core_keys.READINESS].unregister("route_state")
        await publisher.stop()
