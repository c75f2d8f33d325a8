"""The AMI link: one supervised connection to Asterisk, over panoramisk 1.4's protocol parser.

What is used from panoramisk, and what is replaced (each replaced part has a test in
tests/adapters/test_ami_*.py):

* Kept: ``panoramisk.ami_protocol.AMIProtocol`` (subclassed) and ``panoramisk.message.Message``
  for parsing a frame's ``Key: Value`` lines.
* Replaced: ``AMIProtocol.data_received`` (framing): panoramisk decodes every TCP chunk on its
  own, so a UTF-8 character split across reads is lost; it strips whole frames, so an empty last
  header (``AppData: ``) vanishes; and its buffer has no bound.
* Replaced: ``AMIProtocol.handle_message`` (our subclass routes frames itself). panoramisk hands
  any frame whose ActionID belongs to a pending action to that action, so an event such as the
  ``OriginateResponse`` of an async Originate never reaches event handlers.
* Replaced: ``panoramisk.Manager`` as a whole. Its reconnect has a fixed delay and no backoff;
  actions queued while disconnected are re-sent only on ``FullyBooted`` (sent only to users with
  ``read=system``), an action sent while disconnected may never resolve, and an Originate pending
  at the disconnect is re-sent after reconnecting (the citizen is dialled twice). Its ping reply
  is never checked, so a half-open TCP connection is never noticed, and event callbacks returning
  coroutines become fire-and-forget tasks. Here: exponential backoff with jitter; every action
  under a timeout; an action sent while not connected fails at once with ``AmiNotConnected``; an
  action pending at a disconnect fails with ``AmiConnectionLost`` and is NEVER re-sent; a Ping
  whose reply is awaited (no reply within one interval = half-open: the socket is aborted); sinks
  are called in order and an exception in one is logged, never stopping the reader; coroutine
  results become tasks owned (tracked, cancelled and awaited) by the client.

After every (re)connect the client logs in with a least-privilege event mask, installs per-session
event filters, then resyncs: CoreShowChannels and QueueStatus are read completely and handed to
the sinks' ``on_resync`` before any event that arrived meanwhile is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]
from panoramisk.message import Message  # type: ignore[import-untyped]
from prometheus_client import Counter, Gauge

from cti.core.clock import Clock, system_clock
from cti.core.logs import log_event, redact_digits
from telephony.settings import AmiSettings

logger = logging.getLogger(__name__)

AMI_CONNECTED = Gauge("cti_ami_connected", "1 while the AMI link is logged in and resynced")
AMI_EVENTS = Counter("cti_ami_events_total", "AMI events delivered to the sinks", ["event"])
AMI_RECONNECTS = Counter("cti_ami_reconnects_total", "AMI reconnect attempts after a lost link")

# Login event classes (least privilege): call/agent for channels and queues, dialplan for the
# VarSet of CTI_* variables, system for FullyBooted/Shutdown. No reporting/dtmf/cdr/security...
LOGIN_EVENT_MASK = "call,agent,dialplan,system"

# Events the tracker, call control and presence use; everything else is filtered out by
# Asterisk itself (Newexten and non-CTI VarSet are most of the traffic of a call).
DEFAULT_EVENT_NAMES: tuple[str, ...] = (
    "Newchannel",
    "Newstate",
    "NewCallerid",
    "NewConnectedLine",
    "Hangup",
    "HangupRequest",
    "Rename",
    "BlindTransfer",
    "AttendedTransfer",
    "DialBegin",
    "DialEnd",
    "DialState",
    "BridgeCreate",
    "BridgeDestroy",
    "BridgeEnter",
    "BridgeLeave",
    "LocalBridge",
    "AGIExecStart",
    "AGIExecEnd",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberStatus",
    "QueueMemberPause",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberRinginuse",
    "OriginateResponse",
    "FullyBooted",
    "Shutdown",
)
# VarSet is let through only for our own variables (CTI_CATEGORY, CTI_ROUTE, CTI_CALLBACK_ID...).
# The dialplan sets inherited variables (`Set(__CTI_CATEGORY=...)`), which Asterisk reports with
# their underscores (`Variable: __CTI_CATEGORY`): zero to two leading underscores are ours too.
VARSET_PREFIX = "CTI_"
VARSET_REGEX = f"^_{{0,2}}{VARSET_PREFIX}"
_OUR_VARIABLE = re.compile(VARSET_REGEX)
DEFAULT_NEWEXTEN_CONTEXTS = ("departments", "outbound-callback")  # tracker: callback + transfer contexts
MAX_FRAME_BYTES = 1 << 20  # a frame this large without its end is garbage: drop the link
_CONTEXT = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

ActionValue = str | Sequence[str]


class AmiError(Exception):
    """Base of every AMI link error."""


class AmiActionError(AmiError):
    """Asterisk answered an action with an error; `message` is Asterisk's own text."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI action {action} failed: {message}")
        self.action = action
        self.message = message


class AmiTimeout(AmiActionError):
    """No complete answer within the action timeout; the action may or may not have run."""


class AmiNotConnected(AmiActionError):
    """The link is not up; the action was not sent."""


class AmiConnectionLost(AmiActionError):
    """The link dropped while the action was pending; its outcome is unknown and it is not re-sent."""


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


@dataclass(frozen=True)
class AmiResponse:
    """An action's Response headers plus, for list actions, the list's events (Complete included)."""

    headers: dict[str, str]
    events: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    """Asterisk's view right after a (re)connect."""

    channels: list[dict[str, str]]
    queue_params: list[dict[str, str]]
    queue_members: list[dict[str, str]]
    queue_entries: list[dict[str, str]]


class AmiSink(Protocol):
    """Receives events and resyncs. Either method may return an awaitable (run as an owned task)."""

    def on_event(self, event: Mapping[str, str]) -> Awaitable[None] | None: ...

    def on_resync(self, snapshot: Snapshot) -> Awaitable[None] | None: ...


def backoff_delay(attempt: int, initial: float, cap: float, rnd: Callable[[], float]) -> float:
    """Exponential backoff with 'equal jitter': in [d/2, d], d = min(cap, initial * 2**attempt)."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = min(cap, initial * (2 ** min(attempt, 32)))
    return float(ceiling / 2 + rnd() * ceiling / 2)


def encode_action(action: Mapping[str, ActionValue]) -> bytes:
    """Serialise an action; a CR or LF inside a value (an injected extra header) is refused."""
    lines: list[str] = []
    for key, value in action.items():
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if not isinstance(item, str):
                raise TypeError(f"AMI header {key!r}: value must be str, got {type(item).__name__}")
            if "\r" in item or "\n" in item or "\r" in key or "\n" in key:
                raise ValueError(f"AMI header {key!r}: line breaks are not allowed in values")
            lines.append(f"{key}: {item}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def message_to_dict(message: Mapping[str, Any]) -> dict[str, str]:
    """Flatten a parsed frame to str -> str.

    ``ChanVariable: NAME=value`` (one per variable listed in manager.conf ``channelvars``) becomes
    ``ChanVariable(NAME)``; any other repeated header keeps its first value (as telephony.frames).
    """
    flat: dict[str, str] = {}
    for key, value in message.items():
        if key == "content" and not value:
            continue  # panoramisk stores a response body under this key; events have none
        values = value if isinstance(value, list) else [value]
        if key.lower() in ("chanvariable", "destchanvariable"):
            for item in values:
                name, _, var_value = str(item).partition("=")
                flat[f"{key}({name.strip()})"] = var_value.strip()
        else:
            flat[key] = str(values[0]).strip() if values else ""
    return flat


def event_filters(names: Iterable[str], newexten_contexts: Iterable[str] = ()) -> list[dict[str, str]]:
    """Per-session include filters (Asterisk's advanced filter syntax, Asterisk 20.12/21.7/22.2+).

    Newexten (a third of a call's events) passes only where the tracker reads it: in
    `newexten_contexts` (callback and transfer contexts) and for the Hangup application.
    """
    filters = [
        {"Action": "Filter", "Operation": "Add", "MatchCriteria": f"action(include),name({name})"} for name in names
    ]
    filters.append(
        {
            "Action": "Filter",
            "Operation": "Add",
            "MatchCriteria": "action(include),name(VarSet),header(Variable),method(regex)",
            "Filter": VARSET_REGEX,
        }
    )
    filters.append(
        {
            "Action": "Filter",
            "Operation": "Add",
            "MatchCriteria": "action(include),name(Newexten),header(Application),method(regex)",
            "Filter": "^Hangup$",
        }
    )
    contexts = sorted(set(newexten_contexts))
    for context in contexts:
        if not _CONTEXT.fullmatch(context):
            raise ValueError(f"dialplan context {context!r}: only letters, digits, '_' and '-' are allowed")
    if contexts:
        filters.append(
            {
                "Action": "Filter",
                "Operation": "Add",
                "MatchCriteria": "action(include),name(Newexten),header(Context),method(regex)",
                "Filter": "^(" + "|".join(contexts) + ")$",  # '-' is literal in POSIX ERE
            }
        )
    return filters


def adapter_keeps(
    event: Mapping[str, str],
    event_names: Iterable[str] = DEFAULT_EVENT_NAMES,
    newexten_contexts: Iterable[str] = DEFAULT_NEWEXTEN_CONTEXTS,
) -> bool:
    """Python mirror of `event_filters`: would Asterisk send us this event (e.g. for replays)?"""
    name = event.get("Event", "")
    if name == "VarSet":
        return _OUR_VARIABLE.match(event.get("Variable", "")) is not None
    if name == "Newexten":
        return event.get("Application") == "Hangup" or event.get("Context", "") in set(newexten_contexts)
    return name in set(event_names)


def manager_conf_eventfilters(
    event_names: Iterable[str] = DEFAULT_EVENT_NAMES,
    newexten_contexts: Iterable[str] = DEFAULT_NEWEXTEN_CONTEXTS,
) -> list[str]:
    """The same filters as manager.conf lines for the cti user: the `Filter` action needs
    write=system, which the least-privileged user does not have, so production filters there."""
    lines = []
    for action in event_filters(event_names, newexten_contexts):
        lines.append(f"eventfilter({action['MatchCriteria']}) = {action.get('Filter', '')}".rstrip())
    return lines


class _Pending:
    __slots__ = ("done_event", "events", "future", "listing", "name")

    def __init__(self, name: str, future: asyncio.Future[AmiResponse], done_event: str | None) -> None:
        self.name = name
        self.future = future
        self.done_event = done_event  # list actions: the event that ends the list
        self.listing = False
        self.events: list[dict[str, str]] = []


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's framing, with our routing (see the module docstring)."""

    def __init__(self, client: AmiClient, lost: asyncio.Future[None]) -> None:
        super().__init__()
        self._client = client
        self._lost = lost
        self._raw = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        # Replaces panoramisk's data_received, which decodes each TCP chunk on its own (a UTF-8
        # character split across two reads is lost: Japanese caller names), strips the whole frame
        # (an empty last header such as "AppData: " disappears) and buffers without a bound.
        buffer = self._raw + data if self._raw else data
        start = 0
        while True:
            end = buffer.find(b"\r\n\r\n", start)
            if end < 0:
                break
            text = buffer[start:end].decode("utf-8", "replace").strip("\r\n")
            start = end + 4
            message = Message.from_line(text) if text else None
            if message is not None:  # None: an empty frame (extra CRLF) or only the banner
                self.handle_message(message)
        self._raw = buffer[start:]
        if len(self._raw) > MAX_FRAME_BYTES:
            log_event(logger, "ami_frame_too_large", logging.ERROR, pending_bytes=len(self._raw))
            self._raw = b""
            self.abort()

    def handle_message(self, message: Message) -> None:
        try:
            self._client._on_frame(self, message_to_dict(message))
        except Exception:  # never let a bug close the socket from inside data_received
            log_event(logger, "ami_frame_failed", logging.ERROR, exc_info=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._lost.done():
            self._lost.set_result(None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self.transport.abort()


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
        self._sinks: list[AmiSink] = list(sinks)
        self._clock = clock
        self._event_names = tuple(event_names)
        self._newexten_contexts = tuple(newexten_contexts)
        self._rnd = rnd
        self._state = LinkState.DISCONNECTED
        self._since = clock()
        self._reconnects = 0
        self._last_error: str | None = None
        self._protocol: _Protocol | None = None
        self._logged_in = False
        self._pending: dict[str, _Pending] = {}
        self._buffer: list[dict[str, str]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._counter = 0
        self._prefix = f"cti-{random.getrandbits(32):08x}"
        self._connected_event = asyncio.Event()
        self.filters_installed = False

    # ---- public API ---------------------------------------------------------------------------

    def add_sink(self, sink: AmiSink) -> None:
        self._sinks.append(sink)

    @property
    def connected(self) -> bool:
        return self._state is LinkState.CONNECTED

    def status(self) -> LinkStatus:
        return LinkStatus(self._state, self._since, self._reconnects, self._last_error)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """For cti.core.readiness: ready while logged in and resynced."""
        return self.connected, self.status().as_dict()

    async def wait_connected(self, within: float) -> None:
        await asyncio.wait_for(self._connected_event.wait(), within)

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
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
            raise AmiNotConnected(_action_name(action), f"link is {self._state.value}")
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
                log_event(
                    logger,
                    "ami_connect_failed",
                    level,
                    error=type(exc).__name__,
                    detail=redact_digits(str(exc))[:200],
                )
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
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self, lost), self._settings.host, self._settings.port),
            timeout,
        )
        self._protocol = protocol
        login = {
            "Action": "Login",
            "Username": self._settings.username,
            "Secret": self._settings.secret.get_secret_value(),
            "Events": LOGIN_EVENT_MASK,
        }
        self._buffer = []  # events wait until the resync has been delivered
        await self._send(login, within=timeout)
        self._logged_in = True
        await self._install_filters()
        snapshot = await self._resync()
        self._set_state(LinkState.CONNECTED)
        for sink in list(self._sinks):
            self._call(sink.on_resync, snapshot, "on_resync")
        buffered, self._buffer = self._buffer, None
        for event in buffered or []:
            self._deliver(event)
        log_event(
            logger,
            "ami_resynced",
            channels=len(snapshot.channels),
            queue_members=len(snapshot.queue_members),
            queue_entries=len(snapshot.queue_entries),
            buffered_events=len(buffered or []),
        )
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
        name = _action_name(action)
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise AmiNotConnected(name, "no connection")
        fields = dict(action)
        action_id = str(fields.get("ActionID") or self.next_action_id())
        fields["ActionID"] = action_id
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        payload = encode_action(fields)
        future: asyncio.Future[AmiResponse] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(name, future, list_complete)
        try:
            protocol.transport.write(payload)
            return await asyncio.wait_for(
                asyncio.shield(future), within if within is not None else self._settings.action_timeout
            )
        except TimeoutError:
            log_event(logger, "ami_action_timeout", logging.WARNING, action=name, action_id=action_id)
            raise AmiTimeout(name, "no answer in time (the action may still have run)") from None
        finally:
            self._pending.pop(action_id, None)
            if not future.done():
                future.cancel()

    # ---- frames -------------------------------------------------------------------------------

    def _on_frame(self, protocol: _Protocol, frame: dict[str, str]) -> None:
        if protocol is not self._protocol:
            return  # a late frame from a connection already replaced
        action_id = frame.get("ActionID")
        pending = self._pending.get(action_id) if action_id else None
        if "Event" in frame:
            # An event is only part of an action's answer if that action is a list being read;
            # anything else (e.g. OriginateResponse carrying the Originate's ActionID) is an event.
            if pending is not None and pending.listing:
                pending.events.append(frame)
                if frame["Event"] == pending.done_event and not pending.future.done():
                    pending.future.set_result(AmiResponse({}, pending.events))
                return
            self._deliver(frame)
            if frame["Event"] == "Shutdown":
                log_event(logger, "ami_server_shutdown", restart=frame.get("Restart", ""))
                protocol.close()
            return
        if "Response" in frame and pending is not None and not pending.future.done():
            if frame["Response"] not in ("Success", "Follows", "Goodbye"):
                pending.future.set_exception(AmiActionError(pending.name, frame.get("Message", "")))
            elif pending.done_event is not None:
                pending.listing = True
                pending.events = []
                if frame.get("EventList", "").lower() != "start":  # an empty or non-list answer
                    pending.future.set_result(AmiResponse(frame, []))
            else:
                pending.future.set_result(AmiResponse(frame))

    def _deliver(self, event: dict[str, str]) -> None:
        if self._buffer is not None:
            self._buffer.append(event)
            return
        AMI_EVENTS.labels(event.get("Event", "")).inc()
        for sink in list(self._sinks):
            self._call(sink.on_event, event, "on_event")

    def _call(self, method: Callable[[Any], Awaitable[None] | None], arg: Any, what: str) -> None:
        try:
            result = method(arg)
        except Exception:
            log_event(logger, "ami_sink_failed", logging.ERROR, handler=what, exc_info=True)
            return
        if inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(_as_coroutine(result), name=f"ami-{what}")
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(
                logger,
                "ami_sink_failed",
                logging.ERROR,
                handler=task.get_name(),
                error=type(task.exception()).__name__,
            )

    # ---- state --------------------------------------------------------------------------------

    def _drop_connection(self, reason: str) -> None:
        protocol, self._protocol = self._protocol, None
        self._logged_in = False
        self._buffer = None
        if protocol is not None:
            protocol.close()
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(AmiConnectionLost(item.name, reason))

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
        log_event(
            logger,
            "ami_link_state",
            state=state.value,
            reconnects=self._reconnects,
            host=self._settings.host,
            port=self._settings.port,
        )


def _action_name(action: Mapping[str, ActionValue]) -> str:
    value = action.get("Action", "?")
    return value if isinstance(value, str) else "?"


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable
