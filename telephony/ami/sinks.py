"""Delivering AMI events and resyncs to the link's sinks (tracker, call control, presence...).

Sinks are called in order, synchronously; an exception in one is logged and never stops the
others or the reader. A sink may return an awaitable: it becomes a task the link owns (tracked,
cancelled and awaited on stop), never a fire-and-forget one. While a (re)connect's resync is
being read, events are held back and delivered right after the snapshot.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

from cti.core.logs import log_event
from telephony.frames import Frame

logger = logging.getLogger("telephony.ami")

AMI_EVENTS = Counter("cti_ami_events_total", "AMI events delivered to the sinks", ["event"])


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


class SinkFanout:
    def __init__(self, sinks: Sequence[AmiSink]) -> None:
        self.sinks: list[AmiSink] = list(sinks)
        self.tasks: set[asyncio.Task[None]] = set()
        self._held: list[Frame] | None = None
        self._counted: dict[str, Any] = {}  # event name -> its counter child (labels() is slow per event)

    def hold(self) -> None:
        """Hold events back until `release` (the resync must reach the sinks first)."""
        self._held = []

    def release(self) -> int:
        held, self._held = self._held, None
        for event in held or []:
            self.deliver(event)
        return len(held or [])

    def drop_held(self) -> None:
        self._held = None

    def deliver(self, event: Frame) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        name = event.get("Event", "")
        counter = self._counted.get(name)
        if counter is None:
            counter = self._counted[name] = AMI_EVENTS.labels(name)
        counter.inc()
        for sink in self.sinks:
            self.call(sink.on_event, event, "on_event")

    def resync(self, snapshot: Snapshot) -> None:
        for sink in list(self.sinks):
            self.call(sink.on_resync, snapshot, "on_resync")

    def call(self, method: Callable[[Any], Awaitable[None] | None], arg: Any, what: str) -> None:
        try:
            result = method(arg)
        except Exception:
            log_event(logger, "ami_sink_failed", logging.ERROR, handler=what, exc_info=True)
            return
        if result is not None and inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(_as_coroutine(result), name=f"ami-{what}")
            self.tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(logger, "ami_sink_failed", logging.ERROR, handler=task.get_name(),
                      error=type(task.exception()).__name__)

    async def stop(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable
