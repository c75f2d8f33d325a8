"""The access component's state for the app's lifetime: accounts, sessions, throttle, and the hooks
through which other packages follow sessions (access imports none of them).

``auth_ctx`` is a cleanup context (after the database's: it needs ``app[DATABASE]`` and
``app[access_keys.SETTINGS]``); it owns the task that purges idle sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from argon2 import PasswordHasher

from access import keys as access_keys
from access.accounts import AccountStore
from access.passwords import PasswordWork, default_hasher
from access.rules import IpNetwork, LoginThrottle, in_networks, parse_networks
from access.sessions import SessionStore
from cti.core import keys as core_keys
from cti.core.clock import Clock, system_clock
from cti.core.logs import log_event
from cti.gateway import DATABASE

logger = logging.getLogger("cti.screenpop.auth")  # the name supervision.service listens to


SessionEnded = Callable[[str, "str | None"], None]
MeParts = Callable[[str], dict[str, object]]


@dataclass
class AuthContext:
    accounts: AccountStore
    sessions: SessionStore
    throttle: LoginThrottle
    networks: tuple[IpNetwork, ...]
    allowed_origins: list[str]
    known_departments: list[str]
    clock: Clock
    trusted_proxies: tuple[IpNetwork, ...] = ()
    tls: bool = False  # cti itself serves HTTPS: cookies are Secure whatever the request says
    # Registered by other packages' contexts (screenpop: seats, sockets). Called, in order, after a
    # session's delete is committed: fn(token_hash, user_id); user_id is None when a login replaced it.
    session_ended: list[SessionEnded] = field(default_factory=list)
    # Their parts of /api/me and of the login answer: fn(user_id) -> extra keys (screenpop: "seat").
    me_parts: list[MeParts] = field(default_factory=list)

    def from_operator_room(self, client_ip: str | None) -> bool:
        return in_networks(client_ip, self.networks)


AUTH: web.AppKey[AuthContext] = web.AppKey("auth", AuthContext)
# Optional, set before startup: a cheaper argon2 hasher (tests) or tuned parameters.
PASSWORD_HASHER: web.AppKey[PasswordHasher] = web.AppKey("password_hasher", PasswordHasher)


def stored_session_key(store: Path | None) -> bytes | None:
    """The session key kept beside the database (``<store>.session-key``, 0600), made once.

    Sessions then survive a restart of cti, and whoever gets hold of the database file alone (a copy,
    a backup) still cannot forge a session. None for an in-memory store: a random key per start.
    """
    if store is None or str(store) == ":memory:":
        return None
    path = Path(store).with_name(Path(store).name + ".session-key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip() or None
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32))
    return path.read_bytes().strip()


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """Accounts, sessions and throttle for the app's lifetime; owns the session purge task."""
    settings = app[access_keys.SETTINGS]
    db = app[DATABASE]
    clock = app.get(core_keys.CLOCK, system_clock)
    sec = settings.security
    idle = timedelta(minutes=sec.session_idle_minutes)
    session_key = sec.session_key.get_secret_value().encode("utf-8") or stored_session_key(db.path)
    ctx = AuthContext(
        accounts=AccountStore(db, clock, PasswordWork(app.get(PASSWORD_HASHER) or default_hasher())),
        sessions=SessionStore(db, clock, idle, key=session_key),
        throttle=LoginThrottle(sec.login_max_failures, timedelta(seconds=sec.login_window_seconds)),
        networks=parse_networks(sec.operator_networks),
        allowed_origins=list(sec.allowed_origins),
        known_departments=list(settings.known_departments),
        clock=clock,
        trusted_proxies=parse_networks(sec.trusted_proxies),
        tls=settings.tls,
    )
    app[AUTH] = ctx
    purge = asyncio.create_task(_purge_loop(ctx.sessions), name="session-purge")
    try:
        yield
    finally:
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge


async def _purge_loop(sessions: SessionStore, every_seconds: float = 300.0) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            removed = await sessions.purge_expired()
            if removed:
                log_event(logger, "sessions_purged", count=removed)
        except Exception as exc:  # keep purging later; the lookup path checks expiry anyway
            log_event(logger, "session_purge_failed", logging.ERROR, error=type(exc).__name__)
