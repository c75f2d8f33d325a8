"""Issue 14.1: concurrent guesses cannot beat the login limit, and argon2 runs a bounded number at once.

Before the fix the throttle only counted an attempt after its password check had failed, so 60
guesses sent at once were all checked (59 wrong ones, limit 5) and the right one logged in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from authhub_harness import ORIGIN, PASSWORD, Clock, add_user, make_settings, start

from access.web import AUTH

Client = TestClient[Any, Any]
LIMIT = 5
WINDOW = 300


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(tmp_path: Path, clock: Clock, store_target: str) -> AsyncIterator[Client]:
    # 127.0.0.1 is a trusted proxy here, so each request may name its own client address. Both engines.
    c = await start(tmp_path, clock, make_settings(security={
        "login_max_failures": LIMIT, "login_window_seconds": WINDOW, "trusted_proxies": ["127.0.0.1/32"],
        "operator_networks": ["127.0.0.0/8", "10.0.0.0/8", "192.0.2.0/24"],
    }), store=store_target)
    await add_user(c, "op1", "operator")
    await add_user(c, "op2", "operator")
    yield c
    await c.close()


async def attempt(client: Client, user_id: str, password: str, from_ip: str) -> int:
    resp = await client.post("/api/login", json={"user_id": user_id, "password": password},
                             headers={"Origin": ORIGIN, "X-Forwarded-For": from_ip})
    await resp.read()
    return resp.status


async def test_sixty_concurrent_guesses_on_one_account_check_at_most_the_limit(client: Client, clock: Clock) -> None:
    assert client.app is not None
    passwords = client.app[AUTH].accounts.passwords
    before = passwords.verified
    # from 60 different addresses: only the per-account limit can stop them
    statuses = await asyncio.gather(*(
        attempt(client, "op1", f"wrong guess {i:03d}", f"10.0.{i // 200}.{i % 200 + 1}") for i in range(60)
    ))
    assert passwords.verified - before <= LIMIT
    assert statuses.count(401) <= LIMIT and statuses.count(429) >= 60 - LIMIT
    assert set(statuses) <= {401, 429}
    assert passwords.peak_running <= passwords.slots  # argon2 never ran more at once than the cores
    # the right password now waits for the window too
    assert await attempt(client, "op1", PASSWORD, "10.9.9.9") == 429
    clock.advance(seconds=WINDOW - 1)
    assert await attempt(client, "op1", PASSWORD, "10.9.9.9") == 429
    clock.advance(seconds=2)
    assert await attempt(client, "op1", PASSWORD, "10.9.9.9") == 200


async def test_sixty_concurrent_guesses_from_one_address_check_at_most_the_limit(client: Client) -> None:
    assert client.app is not None
    passwords = client.app[AUTH].accounts.passwords
    before = passwords.verified
    users = ["op1", "op2", "nobody"]
    statuses = await asyncio.gather(*(
        attempt(client, users[i % 3], f"wrong guess {i:03d}", "192.0.2.7") for i in range(60)
    ))
    assert passwords.verified - before <= LIMIT and statuses.count(429) >= 60 - LIMIT
    assert await attempt(client, "op2", PASSWORD, "192.0.2.7") == 429  # the address is throttled
    assert await attempt(client, "op2", PASSWORD, "192.0.2.8") == 200  # the account is not (only 2 of 5 on it)


async def test_a_success_does_not_count_against_the_address(client: Client) -> None:
    for _ in range(LIMIT + 2):
        assert await attempt(client, "op1", PASSWORD, "192.0.2.20") == 200


async def test_password_checks_wait_for_a_free_slot_instead_of_taking_every_core(client: Client) -> None:
    assert client.app is not None
    passwords = client.app[AUTH].accounts.passwords
    passwords.peak_running = 0
    results = await asyncio.gather(*(passwords.verify("$argon2id$bogus", "x") for _ in range(40)))
    assert results == [False] * 40
    assert 1 <= passwords.peak_running <= passwords.slots


async def test_beyond_the_queue_a_check_is_refused_as_busy_not_queued_without_bound() -> None:
    from argon2 import PasswordHasher

    from access.passwords import Busy, PasswordWork

    work = PasswordWork(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1), slots=1, max_waiting=3)
    stored = await work.hash("a password of some length")
    results = await asyncio.gather(*(work.verify(stored, "wrong") for _ in range(8)), return_exceptions=True)
    busy = [r for r in results if isinstance(r, Busy)]
    assert len(busy) == 5 and results.count(False) == 3
    assert await work.verify(stored, "a password of some length")  # the queue drained: checks run again


async def test_a_busy_login_answers_503_and_does_not_count_as_a_failure(client: Client) -> None:
    assert client.app is not None
    passwords = client.app[AUTH].accounts.passwords
    passwords.max_waiting = 0  # every check is refused as busy
    statuses = [await attempt(client, "op1", "wrong guess", "192.0.2.30") for _ in range(LIMIT + 2)]
    assert statuses == [503] * (LIMIT + 2)
    passwords.max_waiting = 64
    assert await attempt(client, "op1", PASSWORD, "192.0.2.30") == 200  # nothing was counted against it


async def test_right_passwords_from_outside_the_room_still_count_against_the_limit(client: Client) -> None:
    statuses = [await attempt(client, "op1", PASSWORD, "203.0.113.5") for _ in range(LIMIT + 1)]
    assert statuses == [401] * LIMIT + [429]  # the outside-room answer is no free password oracle
