"""The kernel's typed application keys: the injected clock and the readiness registry."""

from __future__ import annotations

from aiohttp import web

from cti.core.clock import Clock
from cti.core.readiness import Readiness

CLOCK: web.AppKey[Clock] = web.AppKey("clock")
READINESS: web.AppKey[Readiness] = web.AppKey("readiness", Readiness)
