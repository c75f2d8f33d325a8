"""Issue 14 finding 10: ``security.session_key`` was configured but unused. The sessions table keeps
HMAC-SHA256(token) under the configured key; without one, under the key kept beside the database."""

from __future__ import annotations

from pathlib import Path

from authhub_harness import Clock, add_user, login, make_settings, rows, session_cookie, start

from access.sessions import token_hash

CONFIGURED = "k" * 48


def stored_keys(directory: Path) -> list[bytes]:
    return [path.read_bytes().strip() for path in directory.glob("*.session-key")]


async def test_sessions_are_hashed_under_the_configured_session_key(tmp_path: Path) -> None:
    c = await start(tmp_path, Clock(), make_settings(security={"session_key": CONFIGURED}))
    try:
        await add_user(c, "op1", "operator")
        await login(c, "op1")
        token = session_cookie(c)
        assert token
        [(stored,)] = await rows(c, "SELECT token_hash FROM sessions")
        assert stored == token_hash(token, CONFIGURED.encode("utf-8"))
        for beside in stored_keys(tmp_path):  # a key kept beside the database is not the one in use
            assert stored != token_hash(token, beside)
        assert (await c.get("/api/me")).status == 200
    finally:
        await c.close()


async def test_without_a_configured_key_the_key_beside_the_database_is_used(tmp_path: Path) -> None:
    c = await start(tmp_path, Clock(), make_settings())
    try:
        await add_user(c, "op1", "operator")
        await login(c, "op1")
        token = session_cookie(c)
        assert token
        [(stored,)] = await rows(c, "SELECT token_hash FROM sessions")
        [key] = stored_keys(tmp_path)
        assert stored == token_hash(token, key)
    finally:
        await c.close()
