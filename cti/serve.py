"""`cti serve`: configure logging, build the app, run it until SIGINT/SIGTERM."""

from __future__ import annotations

import logging

from aiohttp import web

from cti.app import create_app
from cti.config import Settings
from cti.core.logs import configure_logging, log_event

logger = logging.getLogger("cti.serve")


def run(settings: Settings) -> int:
    configure_logging(settings.logging.level, settings.logging.json_lines)
    app = create_app(settings)
    log_event(logger, "cti_starting", host=settings.http.host, port=settings.http.port)
    # run_app handles SIGINT/SIGTERM and runs every cleanup_ctx in reverse order on the way out.
    web.run_app(app, host=settings.http.host, port=settings.http.port, print=None, access_log=None)
    log_event(logger, "cti_stopped")
    return 0
