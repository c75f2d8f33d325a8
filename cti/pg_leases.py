"""Run-once leases on PostgreSQL: several cti nodes share the store, and each run-once job (handover,
purge, access alerts) is led by whichever node holds the job's *session* advisory lock.

The lock (``pg_try_advisory_lock``) is taken on a connection kept for leases only. It lives exactly
as long as that connection: when the leading node is killed (kill -9, power), the kernel closes its
socket, PostgreSQL ends the session and releases the lock, and a standby takes it at its next try
(`retry_seconds`). No clocks, no lease table, nothing to clean up after a crash.

A node that loses its lease connection (PostgreSQL restarted, network) stops leading at once (the
job is cancelled) and competes again: two nodes never lead the same job while both reach PostgreSQL.

The kernel's `cti.core.run_once` holds what the packages see (`Leases`, `leases_of`); this module is
the composition root's PostgreSQL implementation of it (`cti.cluster` installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cti.core.logs import log_event
from cti.core.run_once import Job

logger = logging.getLogger("cti.run_once")

# Every cti session on PostgreSQL: if a node's machine dies without closing its sockets (power, a
# cable), the server notices within ~25 s instead of the kernel's 2 hours, ends the session and so
# frees the writer lock and the node's leases. A session idle inside a transaction for 5 min (a node
# frozen mid-batch) is ended too; cti's units never wait inside a transaction for longer (the
# contract-end export writes its files between statements: 5 min leaves room for that).
SESSION_GUARDS = (
    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3;"
    " SET client_connection_check_interval = '5s'; SET idle_in_transaction_session_timeout = '300s'"
)


def lock_key(job: str) -> int:
    """A stable signed 64-bit advisory-lock key for a job name."""
    return int.from_bytes(hashlib.sha256(f"cti.run_once:{job}".encode()).digest()[:8], "big", signed=True)


class PgLeases:
    """Advisory-lock leases on one dedicated PostgreSQL connection (its own thread)."""

    def __init__(self, url: str, node: str, *, retry_seconds: float = 1.0, check_seconds: float = 1.0) -> None:
        self.url = url
        self.node = node
        self.retry_seconds = retry_seconds
        self.check_seconds = check_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cti-leases")
        self._conn: Any = None
        self._held: set[str] = set()

    def leading(self) -> set[str]:
        return set(self._held)

    async def _call(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True, application_name=f"cti-leases:{self.node}")
            self._conn.execute(SESSION_GUARDS.encode())
            self._held.clear()  # a new session holds nothing
        return self._conn

    def _try_lock(self, job: str) -> bool:
        row = self._connection().execute("SELECT pg_try_advisory_lock(%s)", (lock_key(job),)).fetchone()
        return bool(row and row[0])

    def _still_held(self, job: str) -> bool:
        """The lock is still ours: the session is alive and PostgreSQL lists the lock as granted to it."""
        key = lock_key(job)
        row = self._connection().execute(
            # a bigint key is held as classid (high 32 bits), objid (low 32 bits), objsubid 1
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
            " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        ).fetchone()
        return bool(row and row[0])

    def _unlock(self, job: str) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(job),))

    async def _acquire(self, job: str) -> bool:
        try:
            got = bool(await self._call(lambda: self._try_lock(job)))
        except Exception as exc:  # PostgreSQL unreachable: nobody here leads; try again later
            log_event(logger, "lease_unavailable", logging.WARNING, job=job, error=type(exc).__name__)
            return False
        if got:
            self._held.add(job)
        return got

    async def _holds(self, job: str) -> bool:
        try:
            return bool(await self._call(lambda: self._still_held(job)))
        except Exception:
            return False

    async def lead(self, job: str, leader: Job, standby: Job | None = None) -> None:
        while True:
            standing_by = asyncio.create_task(standby()) if standby is not None else None
            try:
                while True:  # a poll: PostgreSQL does not tell a waiter when a session lock frees
                    if await self._acquire(job):
                        break
                    await asyncio.sleep(self.retry_seconds)
            finally:
                if standing_by is not None:
                    standing_by.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await standing_by
            log_event(logger, "lease_acquired", job=job, node=self.node)
            running = asyncio.create_task(leader(), name=f"lead:{job}")
            try:
                while not running.done():
                    await asyncio.wait({running}, timeout=self.check_seconds)
                    if not running.done() and not await self._holds(job):
                        log_event(logger, "lease_lost", logging.WARNING, job=job, node=self.node)
                        break
            finally:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                if job in self._held:
                    self._held.discard(job)
                    with contextlib.suppress(Exception):
                        await self._call(lambda: self._unlock(job))
            if running.done() and not running.cancelled() and running.exception() is None:
                return  # the job ended by itself

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()

        with contextlib.suppress(Exception):
            await self._call(shut)
        self._held.clear()
        self._executor.shutdown(wait=False)
