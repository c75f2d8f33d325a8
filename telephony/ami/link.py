"""The AMI link: one supervised connection to Asterisk feeding the sinks.

Replaces ``panoramisk.Manager`` as a whole (see telephony.ami.protocol for the protocol parts).
panoramisk's reconnect has a fixed delay and no backoff; actions queued while disconnected are
re-sent only on ``FullyBooted`` (sent only to users with ``read=system``), an action sent while
disconnected may never resolve, and an Originate pending at the disconnect is re-sent after
reconnecting (the citizen is dialled twice). Its ping reply is never checked, so a half-open TCP
connection is never noticed, and event callbacks returning coroutines become fire-and-forget
tasks. Here: exponential backoff with jitter; every action under a timeout; an action sent while
not connected fails at once with ``AmiNotConnected``; an action pending at a disconnect fails with
``AmiConnectionLost`` and is NEVER re-sent; a Ping whose reply is awaited (no reply within one
interval = half-open: the socket is aborted); sinks as telephony.ami.sinks says.

After every (re)connect the client logs in with a least-privilege event mask, installs per-session
event filters, then resyncs: CoreShowChannels and QueueStatus are read completely and handed to
the sinks' ``on_resync`` before any event that arrived meanwhile is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from prometheus_client import Counter, Gauge

from cti.core.clock import Clock, system_clock
from cti.core.logs import log_event, redact_digits
from telephony.ami.actions import (
    ActionValue,
    AmiActionError,
    AmiConnectionLost,
    AmiError,
    AmiNotConnected,
    AmiResponse,
    AmiTimeout,
    action_name,
    encode_action,
)
from telephony.ami.filters import DEFAULT_EVENT_NAMES, DEFAULT_NEWEXTEN_CONTEXTS, LOGIN_EVENT_MASK, event_filters
from telephony.ami.pending import PendingActions
from telephony.ami.protocol import AmiProtocol
from telephony.ami.sinks import AmiSink, SinkFanout, Snapshot
from telephony.frames import Frame
from telephony.settings import AmiSettings

logger = logging.getLogger("telephony.ami")

AMI_CONNECTED = Gauge("cti_ami_connected", "1 while the AMI link is logged in and resynced")
AMI_RECONNECTS = Counter("cti_ami_reconnects_total", "AMI reconnect attempts after a lost link")


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass(frozen=True)
class LinkStatus:
    state: LinkState
    since: datetime
    reconnects: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "since": self.since.isoformat(),
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


def backoff_delay(attempt: int, initial: float, cap: float, rnd: Callable[[], float]) -> float:
    """Exponential backoff with 'equal jitter': in [d/2, d], d = min(cap, initial * 2**attempt)."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = min(cap, initial * (2 ** min(attempt, 32)))
    return float(ceiling / 2 + rnd() * ceiling / 2)


class AmiClient:
    """A supervised AMI connection feeding one or more sinks.

    ``start()`` spawns the supervisor; ``stop()`` cancels and awaits everything it owns.
    """

    def __init__(
        self,
        settings: AmiSettings,
        sinks: Sequence[AmiSink] = (),
        *,
        clock: Clock = system_clock,
        event_names: Sequence[str] = DEFAULT_EVENT_NAMES,
        newexten_contexts: Sequence[str] = DEFAULT_NEWEXTEN_CONTEXTS,
        rnd: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._fanout = SinkFanout(sinks)
        self._tasks = self._fanout.tasks  # the sinks' tasks this client owns
        self._clock = clock
        self._event_names = tuple(event_names)
        self._newexten_contexts = tuple(newexten_contexts)
        self._rnd = rnd
        self._state = LinkState.DISCONNECTED
        self._since = clock()
        self._reconnects = 0
        self._last_error: str | None = None
        self._protocol: AmiProtocol | None = None
        self._pending = PendingActions()
        self._runner: asyncio.Task[None] | None = None
        self._counter = 0
        self._prefix = f"cti-{random.getrandbits(32):08x}"
        self._connected_event = asyncio.Event()
        self.filters_installed = False

    # ---- public API ---------------------------------------------------------------------------

    def add_sink(self, sink: AmiSink) -> None:
        self._fanout.sinks.append(sink)

    @property
    def connected(self) -> bool:
        return self._state is LinkState.CONNECTED

    def status(self) -> LinkStatus:
        return LinkStatus(self._state, self._since, self._reconnects, self._last_error)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """For cti.core.readiness: ready while logged in and resynced."""
        return self.connected, self.status().as_dict()

    async def wait_connected(self, within: float) -> None:
        async with asyncio.timeout(within):
            await self._connected_event.wait()

    def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("AmiClient already started")
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="ami-supervisor")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._drop_connection("stopped")
        await self._fanout.stop()
        self._set_state(LinkState.STOPPED)

    def next_action_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    async def send_action(
        self,
        action: Mapping[str, ActionValue],
        *,
        within: float | None = None,
        list_complete: str | None = None,
    ) -> AmiResponse:
        """Send an action and await its answer for up to `within` seconds (default: the action
        timeout); list actions are read until the `list_complete` event.

        Raises AmiNotConnected (not sent), AmiActionError (Asterisk's error message),
        AmiTimeout, AmiConnectionLost (sent, outcome unknown; never re-sent).
        """
        if not self.connected:
            raise AmiNotConnected(action_name(action), f"link is {self._state.value}")
        return await self._send(action, within=within, list_complete=list_complete)

    # ---- supervisor ---------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._set_state(LinkState.CONNECTING)
            reached = False
            try:
                reached = await self._session()
                if self._last_error != "ping timeout":
                    self._last_error = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, timed out, login rejected... or a bug: keep trying
                self._last_error = type(exc).__name__
                level = logging.WARNING if isinstance(exc, OSError | AmiError | TimeoutError) else logging.ERROR
                log_event(logger, "ami_connect_failed", level, error=type(exc).__name__,
                          detail=redact_digits(str(exc))[:200])
            finally:
                self._drop_connection("connection lost")
            self._set_state(LinkState.DISCONNECTED)
            if reached:
                attempt = 0
            delay = backoff_delay(attempt, self._settings.reconnect_initial, self._settings.reconnect_max, self._rnd)
            attempt += 1
            log_event(logger, "ami_reconnect_scheduled", delay_s=round(delay, 3), attempt=attempt)
            await asyncio.sleep(delay)
            self._reconnects += 1
            AMI_RECONNECTS.inc()

    async def _session(self) -> bool:
        """One connection's life; returns True if it got to CONNECTED, when the link is lost."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        timeout = self._settings.action_timeout
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                lambda: AmiProtocol(self, lost), self._settings.host, self._settings.port
            )
        self._protocol = protocol
        login = {
            "Action": "Login",
            "Username": self._settings.username,
            "Secret": self._settings.secret.get_secret_value(),
            "Events": LOGIN_EVENT_MASK,
        }
        self._fanout.hold()  # events wait until the resync has been delivered
        await self._send(login, within=timeout)
        await self._install_filters()
        snapshot = await self._resync()
        self._set_state(LinkState.CONNECTED)
        self._fanout.resync(snapshot)
        buffered = self._fanout.release()
        log_event(logger, "ami_resynced", channels=len(snapshot.channels),
                  queue_members=len(snapshot.queue_members), queue_entries=len(snapshot.queue_entries),
                  buffered_events=buffered)
        pinger = loop.create_task(self._ping_loop(), name="ami-ping")
        try:
            await lost
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        return True

    async def _install_filters(self) -> None:
        self.filters_installed = False
        for action in event_filters(self._event_names, self._newexten_contexts):
            try:
                await self._send(action, within=self._settings.action_timeout)
            except AmiActionError as exc:
                if isinstance(exc, AmiConnectionLost):
                    raise
                # e.g. no write=system permission, or an Asterisk without advanced filters:
                # carry on unfiltered (or filtered by manager.conf eventfilter) rather than not at all.
                # With the shipped least-privilege user this is expected: manager.conf filters.
                log_event(logger, "ami_session_filter_not_installed", logging.INFO,
                          detail=redact_digits(exc.message)[:200], relying_on="manager.conf eventfilter")
                return
        self.filters_installed = True

    async def _resync(self) -> Snapshot:
        timeout = self._settings.action_timeout
        channels = await self._send(
            {"Action": "CoreShowChannels"}, within=timeout, list_complete="CoreShowChannelsComplete"
        )
        queues = await self._send({"Action": "QueueStatus"}, within=timeout, list_complete="QueueStatusComplete")

        def of(events: list[dict[str, str]], name: str) -> list[dict[str, str]]:
            return [e for e in events if e.get("Event") == name]

        return Snapshot(
            channels=of(channels.events, "CoreShowChannel"),
            queue_params=of(queues.events, "QueueParams"),
            queue_members=of(queues.events, "QueueMember"),
            queue_entries=of(queues.events, "QueueEntry"),
        )

    async def _ping_loop(self) -> None:
        interval = self._settings.ping_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self._send({"Action": "Ping"}, within=interval)
            except AmiTimeout:
                # No reply within one interval: the connection is half-open. Dropping it now
                # bounds detection to two intervals after the last sign of life.
                log_event(logger, "ami_half_open", logging.WARNING, ping_interval_s=interval)
                self._last_error = "ping timeout"
                if self._protocol is not None:
                    self._protocol.abort()
                return
            except AmiActionError:
                return

    # ---- actions ------------------------------------------------------------------------------

    async def _send(
        self, action: Mapping[str, ActionValue], *, within: float | None, list_complete: str | None = None
    ) -> AmiResponse:
        name = action_name(action)
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise AmiNotConnected(name, "no connection")
        fields = dict(action)
        action_id = str(fields.get("ActionID") or self.next_action_id())
        fields["ActionID"] = action_id
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        payload = encode_action(fields)
        future = self._pending.add(action_id, name, list_complete)
        try:
            protocol.write(payload)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the answer and drops a
            # cancellation that arrives in the same loop turn as the answer (CPython gh-86296), and
            # stop() then waited forever on a supervisor that never saw its cancel.
            async with asyncio.timeout(within if within is not None else self._settings.action_timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            log_event(logger, "ami_action_timeout", logging.WARNING, action=name, action_id=action_id)
            raise AmiTimeout(name, "no answer in time (the action may still have run)") from None
        finally:
            self._pending.discard(action_id)
            if not future.done():
                future.cancel()

    # ---- frames -------------------------------------------------------------------------------

    def on_frames(self, protocol: AmiProtocol, frames: list[Frame]) -> None:
        """Every frame of one TCP read, in order (telephony.ami.protocol calls this)."""
        if protocol is not self._protocol:
            return  # late frames from a connection already replaced
        pending, deliver = self._pending, self._fanout.deliver
        for frame in frames:
            try:
                if "Event" in frame:
                    if pending.take_event(frame):
                        continue  # part of a list action's answer
                    deliver(frame)
                    if frame["Event"] == "Shutdown":
                        log_event(logger, "ami_server_shutdown", restart=frame.get("Restart", ""))
                        protocol.close()
                        return
                elif "Response" in frame:
                    pending.answer(frame)
            except Exception:  # one bad frame (or sink) never stops the others
                log_event(logger, "ami_frame_failed", logging.ERROR, exc_info=True)

    # ---- state --------------------------------------------------------------------------------

    def _drop_connection(self, reason: str) -> None:
        protocol, self._protocol = self._protocol, None
        self._fanout.drop_held()
        if protocol is not None:
            protocol.close()
        self._pending.fail_all(reason)

    def _set_state(self, state: LinkState) -> None:
        if state is self._state:
            return
        self._state = state
        self._since = self._clock()
        AMI_CONNECTED.set(1 if state is LinkState.CONNECTED else 0)
        if state is LinkState.CONNECTED:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        log_event(logger, "ami_link_state", state=state.value, reconnects=self._reconnects,
                  host=self._settings.host, port=self._settings.port)
