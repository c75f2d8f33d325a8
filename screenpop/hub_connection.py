"""One websocket of the hub: its bounded queue, its writer task, its first sync and its close.

Split from screenpop/hub.py (which holds the registry, the sequence numbers and the replay
buffers); see that module for the whole design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter
from pydantic import BaseModel

from cti.core.logs import log_event
from cti.core.principal import Principal
from screenpop.messages import CLOSE_TOO_SLOW, Error, Hello, Resume, Snapshot

if TYPE_CHECKING:
    from screenpop.hub import Hub

logger = logging.getLogger("cti.screenpop.hub")

POPS_SENT = Counter("cti_pops_sent_total", "Screen pops written to operator sockets")


class Socket(Protocol):
    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


@dataclass
class SyncPlan:
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
        self._plan: SyncPlan | None = None
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
        plan = self._plan or SyncPlan(replay=None)
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
