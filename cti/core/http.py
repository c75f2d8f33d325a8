"""HTTP pieces every package shares: the request's principal (set by the access middleware)."""

from __future__ import annotations

from aiohttp import web

from cti.core.principal import Principal

PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("cti.core.principal", Principal)


def current_principal(request: web.Request) -> Principal | None:
    """The authenticated principal of this request, or None when anonymous."""
    value = request.get(PRINCIPAL_KEY)
    return value if isinstance(value, Principal) else None
