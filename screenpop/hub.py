"""The websocket hub: per-connection bounded queues and writer tasks, per-user sequence numbers, resume.

- Each connection has one bounded asyncio.Queue and one writer task. Senders (`send_to_user`,
  `send_to_role`) only ever `put_nowait`, so a stalled browser never delays anyone.
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
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from cti.core.logs import log_event
from cti.core.principal import Principal, Role
from screenpop.hub_connection import Connection, Socket, SyncPlan
from screenpop.messages import (
    CLOSE_SESSION_EXPIRED,
    DeskState,
    PresenceSet,
    Resume,
    SessionExpired,
    is_sequenced,
)

logger = logging.getLogger("cti.screenpop.hub")

WS_CLIENTS = Gauge("cti_ws_clients", "Open operator websocket connections")
WS_DISCONNECTS = Counter("cti_ws_disconnects_total", "Websocket disconnects by reason", ["reason"])

# Pops can be large (history, FAQ suggestions): the replay buffer is bounded in bytes as well.
REPLAY_MAX_BYTES = 2 * 1024 * 1024

SnapshotProvider = Callable[[Principal], Awaitable[DeskState]]
PresenceHandler = Callable[[Principal, PresenceSet], Awaitable[None]]
FaqSearchHandler = Callable[[Principal, str], Awaitable[list[dict[str, Any]]]]


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

    def serves(self, user_id: str) -> bool:
        """The user has had a socket on this hub since it started (open now, or dropped a moment ago)."""
        return user_id in self._users

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

    def drop_history(self, user_id: str) -> None:
        """Forget the user's replay buffer (it may hold caller numbers): at logout or session end.
        The sequence number is kept, so a later resume falls back to a snapshot."""
        channel = self._users.get(user_id)
        if channel is not None:
            channel.buffer.clear()
            channel.buffer_bytes = 0

    # -- resume ---------------------------------------------------------------------------------

    def _plan_sync(self, conn: Connection, msg: Resume, upto: int | None = -1) -> SyncPlan:
        """Replay (N, upto] from the buffer when complete, else plan a snapshot.

        `upto=-1` means the connection's connect_seq (first sync); None means the current seq.
        """
        channel = self._users.get(conn.user_id)
        if channel is None:
            return SyncPlan(replay=None)
        end = conn.connect_seq if upto == -1 else (channel.seq if upto is None else upto)
        last = msg.last_seq
        if msg.epoch is not None and msg.epoch != self.epoch:
            return SyncPlan(replay=None)
        if last > end:
            return SyncPlan(replay=None)
        if last == end:
            return SyncPlan(replay=[])
        wanted = [(s, t) for s, t in channel.buffer if last < s <= end]
        if len(wanted) != end - last:
            return SyncPlan(replay=None)  # some fell out of the window
        return SyncPlan(replay=[t for _, t in wanted])

    async def close_all(self) -> None:
        """Shutdown: ask every socket to close (1001) and wait for the writers."""
        from screenpop.messages import CLOSE_GOING_AWAY

        conns = list(self.connections())
        for conn in conns:
            conn.request_close(CLOSE_GOING_AWAY, "server_shutdown", None)
        await asyncio.gather(*(conn.stop_writer() for conn in conns))
