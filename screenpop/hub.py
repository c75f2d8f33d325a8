"""The websocket hub: per-connection bounded queues and writer tasks, per-user sequence numbers, resume.

- Each connection has one bounded asyncio.Queue and one writer task. Senders (`send_to_user`,
  `send_to_role`, `broadcast`) only ever `put_nowait`, so a stalled browser never delays anyone.
  A connection whose queue overflows is disconnected (close code 1008, after an ``error``
  ``too_slow`` when the socket still takes data; a socket that takes nothing is aborted).
- Every message addressed to a user takes the user's next sequence number and is kept in a replay
  buffer of ``replay_window`` messages (and at most REPLAY_MAX_BYTES per user). A reconnecting
  client sends ``{"type": "resume", "last_seq": N}`` first: if every message after N is still in
  the buffer they are replayed in order, otherwise (or on a new server epoch, or when no resume
  arrives within ``resume_grace``) the client gets a ``snapshot`` from the snapshot provider, and
  queued messages it covers are skipped. Live messages are held until that first sync so the
  client sees ``seq`` in order.

The hub does not import aiohttp: a connection talks to anything with ``send_str``/``close``
(aiohttp's WebSocketResponse) plus an ``abort`` callable for the raw transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from cti.core.logs import log_event
from cti.core.principal import Principal, Role
from screenpop.messages import (
    CLOSE_SESSION_EXPIRED,
    CLOSE_TOO_SLOW,
    DeskState,
    Error,
    Hello,
    PresenceSet,
    Resume,
    SessionExpired,
    Snapshot,
    is_sequenced,
)

logger = logging.getLogger("cti.screenpop.hub")

WS_CLIENTS = Gauge("cti_ws_clients", "Open operator websocket connections")
POPS_SENT = Counter("cti_pops_sent_total", "Screen pops written to operator sockets")
WS_DISCONNECTS = Counter("cti_ws_disconnects_total", "Websocket disconnects by reason", ["reason"])

# Pops can be large (history, FAQ suggestions): the replay buffer is bounded in bytes as well.
REPLAY_MAX_BYTES = 2 * 1024 * 1024

SnapshotProvider = Callable[[Principal], Awaitable[DeskState]]
PresenceHandler = Callable[[Principal, PresenceSet], Awaitable[None]]
FaqSearchHandler = Callable[[Principal, str], Awaitable[list[dict[str, Any]]]]


class Socket(Protocol):
    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


async def empty_snapshot(principal: Principal) -> DeskState:
    return DeskState()


@dataclass
class _UserChannel:
    user_id: str
    role: Role
    seq: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=deque)
    buffer_bytes: int = 0
    connections: set[Connection] = field(default_factory=set)


@dataclass
class _SyncPlan:
    replay: list[str] | None  # None: send a snapshot instead


class Connection:
    """One websocket: its bounded queue, its writer task and why it ended."""

    def __init__(
        self,
        hub: Hub,
        principal: Principal,
        session_hash: str,
        socket: Socket,
        abort: Callable[[], None],
        unsent: Callable[[], int] = lambda: 0,
    ) -> None:
        self.hub = hub
        self.principal = principal
        self.session_hash = session_hash
        self.id = secrets.token_hex(6)
        self._socket = socket
        self._abort = abort
        self._unsent = unsent  # bytes still in the transport's write buffer
        self.queue: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue(maxsize=hub.queue_size)
        self.connect_seq = 0
        self._plan: _SyncPlan | None = None
        self._synced = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self.close_request: tuple[int, str, BaseModel | None] | None = None
        self.disconnect_reason = "client_closed"

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    # -- called by senders (never awaits) -------------------------------------------------------

    def offer(self, seq: int, kind: str, text: str) -> bool:
        if self.close_request is not None:
            return False
        try:
            self.queue.put_nowait((seq, kind, text))
        except asyncio.QueueFull:
            log_event(
                logger,
                "ws_client_too_slow",
                logging.WARNING,
                user_id=self.user_id,
                conn=self.id,
                queue_size=self.hub.queue_size,
            )
            self.request_close(
                CLOSE_TOO_SLOW,
                "too_slow",
                Error(
                    seq=self.hub.current_seq(self.user_id),
                    code="too_slow",
                    message="受信が追いつかないため切断しました。再接続してください / "
                    "Disconnected: this client fell too far behind; reconnect.",
                ),
            )
            return False
        return True

    def send_local(self, msg: BaseModel) -> bool:
        """A reply for this socket only (error, pong, results): carries the current seq, takes none."""
        text = msg.model_copy(update={"seq": self.hub.current_seq(self.user_id)}).model_dump_json()
        return self.offer(-1, str(getattr(msg, "type", "")), text)

    def sync_without_resume(self) -> None:
        """The client spoke before resuming: treat it as a fresh client (snapshot)."""
        self._synced.set()

    def request_close(self, code: int, reason: str, last_words: BaseModel | None) -> None:
        """Close this socket soon (from any context, without awaiting): the writer does it."""
        if self.close_request is not None:
            return
        self.close_request = (code, reason, last_words)
        self.disconnect_reason = reason
        self._synced.set()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    # -- called by the socket's handler ---------------------------------------------------------

    def start_writer(self) -> asyncio.Task[None]:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")
        return self._writer

    async def stop_writer(self) -> None:
        """End the writer (a requested close is let finish; it is bounded by close_timeout)."""
        if self._writer is None:
            return
        if not self._writer.done() and self.close_request is None:
            self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    def resume(self, msg: Resume) -> None:
        """The client's resume: plan the first sync, or (later) enqueue a replay/snapshot."""
        if not self._synced.is_set():
            self._plan = self.hub._plan_sync(self, msg)
            self._synced.set()
            return
        plan = self.hub._plan_sync(self, msg, upto=None)
        if plan.replay is not None:
            for text in plan.replay:
                self.offer(-1, "replay", text)
        else:
            self.offer(-1, "snapshot", "")

    async def _write_loop(self) -> None:
        try:
            if self.close_request is not None:
                raise asyncio.CancelledError
            await self._write_all()
        except asyncio.CancelledError:
            if self.close_request is None:
                raise
            await self._close_as_requested()
        except Exception as exc:  # the peer went away mid-write
            self.disconnect_reason = "send_failed"
            log_event(
                logger, "ws_send_failed", logging.INFO, user_id=self.user_id, conn=self.id, error=type(exc).__name__
            )
            with contextlib.suppress(Exception):
                self._abort()
        else:  # pragma: no cover - the loop only ends by cancellation or error
            pass

    async def _write_all(self) -> None:
        hub = self.hub
        await self._socket.send_str(
            Hello(
                seq=hub.current_seq(self.user_id),
                user_id=self.user_id,
                role=self.principal.role.value,
                epoch=hub.epoch,
                heartbeat_seconds=hub.heartbeat_seconds,
            ).model_dump_json()
        )
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races
        # with the inner wait finishing, which would leave this writer running forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hub.resume_grace):
                await self._synced.wait()
        plan = self._plan or _SyncPlan(replay=None)
        skip_upto = self.connect_seq
        if plan.replay is not None:
            for text in plan.replay:
                await self._socket.send_str(text)
        else:
            skip_upto = await self._send_snapshot()
        while True:
            seq, kind, text = await self.queue.get()
            if kind == "snapshot":
                skip_upto = await self._send_snapshot()
                continue
            if 0 <= seq <= skip_upto:
                continue  # covered by the snapshot already sent
            await self._socket.send_str(text)
            if kind == "pop":
                POPS_SENT.inc()

    async def _send_snapshot(self) -> int:
        state = await self.hub.snapshot_provider(self.principal)
        seq = self.hub.current_seq(self.user_id)
        await self._socket.send_str(Snapshot(seq=seq, state=state).model_dump_json())
        return seq

    async def _close_as_requested(self) -> None:
        assert self.close_request is not None
        code, reason, last_words = self.close_request

        async def polite() -> None:
            if last_words is not None:
                await self._socket.send_str(last_words.model_dump_json())
            await self._socket.close(code=code, message=reason.encode())
            while self._unsent() > 0:  # noqa: ASYNC110 - polling the transport; it has no event
                await asyncio.sleep(0.05)

        try:
            async with asyncio.timeout(self.hub.close_timeout):
                await polite()
        except (Exception, asyncio.CancelledError) as exc:
            # TimeoutError: the peer takes nothing. CancelledError: aiohttp's shared drain waiter
            # was cancelled with our earlier send. Either way: drop TCP without flushing.
            log_event(
                logger,
                "ws_close_aborted",
                logging.INFO,
                user_id=self.user_id,
                conn=self.id,
                reason=reason,
                error=type(exc).__name__,
            )
            with contextlib.suppress(Exception):
                self._abort()


class Hub:
    def __init__(
        self,
        *,
        queue_size: int,
        replay_window: int,
        heartbeat_seconds: float = 15.0,
        snapshot_provider: SnapshotProvider = empty_snapshot,
        resume_grace: float = 5.0,
        close_timeout: float = 2.0,
        replay_max_bytes: int = REPLAY_MAX_BYTES,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self.replay_window = replay_window
        self.heartbeat_seconds = heartbeat_seconds
        self.snapshot_provider = snapshot_provider
        self.resume_grace = resume_grace
        self.close_timeout = close_timeout
        self.replay_max_bytes = replay_max_bytes
        self.epoch = secrets.token_hex(8)
        self._users: dict[str, _UserChannel] = {}
        # Hooks the composition root may set: presence changes (e.g. AMI QueuePause) and FAQ search.
        self.on_presence: PresenceHandler | None = None
        self.on_faq_search: FaqSearchHandler | None = None

    # -- registry -----------------------------------------------------------------------------

    def connect(
        self,
        principal: Principal,
        session_hash: str,
        socket: Socket,
        abort: Callable[[], None],
        unsent: Callable[[], int] = lambda: 0,
    ) -> Connection:
        channel = self._users.get(principal.user_id)
        if channel is None:
            channel = self._users[principal.user_id] = _UserChannel(principal.user_id, principal.role)
        channel.role = principal.role
        conn = Connection(self, principal, session_hash, socket, abort, unsent)
        conn.connect_seq = channel.seq
        channel.connections.add(conn)
        WS_CLIENTS.inc()
        log_event(logger, "ws_connected", user_id=principal.user_id, conn=conn.id, role=principal.role.value)
        return conn

    def disconnect(self, conn: Connection) -> None:
        channel = self._users.get(conn.user_id)
        if channel is not None and conn in channel.connections:
            channel.connections.discard(conn)
            WS_CLIENTS.dec()
            WS_DISCONNECTS.labels(reason=conn.disconnect_reason).inc()
            log_event(logger, "ws_disconnected", user_id=conn.user_id, conn=conn.id, reason=conn.disconnect_reason)

    def connections(self) -> Iterator[Connection]:
        for channel in list(self._users.values()):
            yield from list(channel.connections)

    def connection_count(self) -> int:
        return sum(len(c.connections) for c in self._users.values())

    def current_seq(self, user_id: str) -> int:
        channel = self._users.get(user_id)
        return channel.seq if channel else 0

    # -- sending (never awaits) ---------------------------------------------------------------

    def send_to_user(self, user_id: str, msg: BaseModel) -> int:
        """Queue `msg` for every socket of the user; returns how many sockets took it.

        Sequenced types are numbered and kept for replay even when the user has no socket open
        right now (a reconnect within the window replays them).
        """
        channel = self._users.get(user_id)
        if channel is None:
            return 0
        kind = str(getattr(msg, "type", ""))
        if is_sequenced(kind):
            channel.seq += 1
            seq = channel.seq
            text = msg.model_copy(update={"seq": seq}).model_dump_json()
            channel.buffer.append((seq, text))
            channel.buffer_bytes += len(text)
            while channel.buffer and (
                len(channel.buffer) > self.replay_window or channel.buffer_bytes > self.replay_max_bytes
            ):
                channel.buffer_bytes -= len(channel.buffer.popleft()[1])
        else:
            seq = -1
            text = msg.model_copy(update={"seq": channel.seq}).model_dump_json()
        delivered = 0
        for conn in list(channel.connections):
            if conn.offer(seq, kind, text):
                delivered += 1
        return delivered

    def send_to_role(self, role: Role, msg: BaseModel) -> int:
        return sum(self.send_to_user(c.user_id, msg) for c in list(self._users.values()) if c.role == role)

    def broadcast(self, msg: BaseModel) -> int:
        return sum(self.send_to_user(user_id, msg) for user_id in list(self._users))

    # -- session ends ---------------------------------------------------------------------------

    def expire_session(self, session_hash: str) -> int:
        """Close every socket of a session (logout, expiry) with 4401 after ``session_expired``."""
        count = 0
        for conn in self.connections():
            if conn.session_hash == session_hash:
                conn.request_close(
                    CLOSE_SESSION_EXPIRED, "session_expired", SessionExpired(seq=self.current_seq(conn.user_id))
                )
                count += 1
        return count

    def expire_user(self, user_id: str) -> int:
        count = 0
        for conn in self.connections():
            if conn.user_id == user_id:
                conn.request_close(
                    CLOSE_SESSION_EXPIRED, "session_expired", SessionExpired(seq=self.current_seq(user_id))
                )
                count += 1
        return count

    def drop_history(self, user_id: str) -> None:
        """Forget the user's replay buffer (it may hold caller numbers): at logout or session end.
        The sequence number is kept, so a later resume falls back to a snapshot."""
        channel = self._users.get(user_id)
        if channel is not None:
            channel.buffer.clear()
            channel.buffer_bytes = 0

    # -- resume ---------------------------------------------------------------------------------

    def _plan_sync(self, conn: Connection, msg: Resume, upto: int | None = -1) -> _SyncPlan:
        """Replay (N, upto] from the buffer when complete, else plan a snapshot.

        `upto=-1` means the connection's connect_seq (first sync); None means the current seq.
        """
        channel = self._users.get(conn.user_id)
        if channel is None:
            return _SyncPlan(replay=None)
        end = conn.connect_seq if upto == -1 else (channel.seq if upto is None else upto)
        last = msg.last_seq
        if msg.epoch is not None and msg.epoch != self.epoch:
            return _SyncPlan(replay=None)
        if last > end:
            return _SyncPlan(replay=None)
        if last == end:
            return _SyncPlan(replay=[])
        wanted = [(s, t) for s, t in channel.buffer if last < s <= end]
        if len(wanted) != end - last:
            return _SyncPlan(replay=None)  # some fell out of the window
        return _SyncPlan(replay=[t for _, t in wanted])

    async def close_all(self) -> None:
        """Shutdown: ask every socket to close (1001) and wait for the writers."""
        from screenpop.messages import CLOSE_GOING_AWAY

        conns = list(self.connections())
        for conn in conns:
            conn.request_close(CLOSE_GOING_AWAY, "server_shutdown", None)
        await asyncio.gather(*(conn.stop_writer() for conn in conns))
