"""Password hashing and checking with argon2id, a bounded number at a time, off the event loop.

Each argon2 computation holds ``memory_cost`` KiB (64 MiB by default) and a core for tens of
milliseconds. Verification runs in a thread (the event loop never stalls on it) and at most
``slots`` at once (default: the cores this process may use), so a burst of logins queues instead of
taking every core and all memory; beyond ``max_waiting`` queued checks the login is refused
(`Busy`: answered 503) rather than queued without bound.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_WAITING_PER_SLOT = 32
T = TypeVar("T")


class Busy(Exception):
    """Too many password checks are queued already."""


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's RFC 9106 low-memory defaults."""
    return PasswordHasher()


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class PasswordWork:
    def __init__(self, hasher: PasswordHasher, slots: int | None = None, max_waiting: int | None = None) -> None:
        self.hasher = hasher
        self.slots = slots or usable_cores()
        self.max_waiting = max_waiting if max_waiting is not None else self.slots * MAX_WAITING_PER_SLOT
        self._semaphore = asyncio.Semaphore(self.slots)
        self._pending = 0
        self.running = 0
        self.peak_running = 0  # for tests and metrics: never above `slots`
        self.verified = 0  # how many verifications ran (the login throttle test counts them)

    async def hash(self, password: str) -> str:
        return await self._run(self._hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        self.verified += 1
        return await self._run(self._verify, stored, password)

    def _hash(self, password: str) -> str:
        return str(self.hasher.hash(password))

    def needs_rehash(self, stored: str) -> bool:
        return bool(self.hasher.check_needs_rehash(stored))

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._pending >= self.max_waiting:
            raise Busy()
        self._pending += 1
        try:
            async with self._semaphore:
                self.running += 1
                self.peak_running = max(self.peak_running, self.running)
                try:
                    return await asyncio.to_thread(fn, *args)
                finally:
                    self.running -= 1
        finally:
            self._pending -= 1

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
