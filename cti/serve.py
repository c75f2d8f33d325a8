"""`cti serve`: configure logging, build the app, run it until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from aiohttp import web

from cti.app import create_app
from cti.config import Settings
from cti.core.logs import configure_logging, log_event
from cti.gateway import exposed_files

logger = logging.getLogger("cti.serve")


def run(settings: Settings) -> int:
    configure_logging(settings.logging.level, settings.logging.json_lines)
    exposed = exposed_files(Path(settings.store.path)) if str(settings.store.path) != ":memory:" else []
    if exposed:
        # The store holds personal data, password hashes and session tokens: never serve it world-readable.
        names = " ".join(str(f) for f in exposed)
        print(f"cti serve: {names}: readable by group or others; fix with: chmod 600 {names}", file=sys.stderr)
        log_event(logger, "store_files_exposed", level=logging.ERROR, files=len(exposed))
        return 2
    app = create_app(settings)
    log_event(logger, "cti_starting", host=settings.http.host, port=settings.http.port)
    # run_app handles SIGINT/SIGTERM and runs every cleanup_ctx in reverse order on the way out.
    web.run_app(app, host=settings.http.host, port=settings.http.port, print=None, access_log=None)
    log_event(logger, "cti_stopped")
    return 0
