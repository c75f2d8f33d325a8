"""(shared kernel) Jobs that must run on one cti node at a time (handover, purge, access alerts): leases.

The packages lead their run-once jobs with `leases_of(app).lead(job, leader, standby)`. With SQLite
there is one node, so it always leads (`SoleNode`, also what a test's partial app gets). With
PostgreSQL several nodes share the store and the composition root installs advisory-lock leases
(cti/pg_leases.py, through `cti.cluster`) under `LEASES`: one node leads each job, the others stand by.

The store's own units stay correct even if a job did run twice (handover and purge select under the
gateway's one-writer lock); the lease avoids the double work, duplicate alerts and duplicate pushes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from aiohttp import web

Job = Callable[[], Coroutine[Any, Any, None]]


def node_name() -> str:
    """This node's name in logs, claims and PostgreSQL's application_name (CTI_NODE, else host:pid)."""
    return os.environ.get("CTI_NODE") or f"{socket.gethostname()}:{os.getpid()}"


class Leases(Protocol):
    async def lead(self, job: str, leader: Job, standby: Job | None = None) -> None:
        """Run `leader()` while this node leads `job`, `standby()` (if any) while another node does."""
        ...

    def leading(self) -> set[str]: ...

    async def close(self) -> None: ...


class SoleNode:
    """One node (SQLite): it leads every job."""

    def __init__(self) -> None:
        self._leading: set[str] = set()

    async def lead(self, job: str, leader: Job, standby: Job | None = None) -> None:
        self._leading.add(job)
        try:
            await leader()
        finally:
            self._leading.discard(job)

    def leading(self) -> set[str]:
        return set(self._leading)

    async def close(self) -> None:
        return None


LEASES: web.AppKey[Leases] = web.AppKey("leases")  # filled by cti.cluster.cluster_ctx


def leases_of(app: web.Application) -> Leases:
    """The node's leases; SoleNode when no cluster context runs (one node, or a test's partial app)."""
    leases = app.get(LEASES)
    if leases is None:
        leases = SoleNode()
        app[LEASES] = leases
    return leases
