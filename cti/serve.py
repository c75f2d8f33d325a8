"""`cti serve`: configure logging, build the app, run it (HTTPS when configured) until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import ssl
import stat
import sys
from pathlib import Path

from aiohttp import web

from cti.app import create_app
from cti.config import HttpSettings, Settings
from cti.core.logs import configure_logging, log_event
from cti.gateway import exposed_files

logger = logging.getLogger("cti.serve")


class TlsError(Exception):
    """The configured certificate or key cannot be used; the message says which and why."""


def tls_context(http: HttpSettings) -> ssl.SSLContext | None:
    """The server's TLS context from `http.tls_cert`/`http.tls_key` (PEM), or None for plain HTTP.

    TLS 1.2 at least, Python's secure server defaults otherwise. The key must not be readable by the
    group or others (like the store, it is refused rather than served).
    """
    if http.tls_cert is None or http.tls_key is None:
        return None
    for name, path in (("http.tls_cert", http.tls_cert), ("http.tls_key", http.tls_key)):
        if not path.is_file():
            raise TlsError(f"{name}: {path}: no such file")
    if http.tls_key.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TlsError(f"http.tls_key: {http.tls_key}: readable by group or others; fix with: chmod 600 {http.tls_key}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(http.tls_cert), str(http.tls_key))
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"http.tls_cert/http.tls_key: cannot load the certificate and key: {exc}") from None
    return context


def run(settings: Settings) -> int:
    configure_logging(settings.logging.level, settings.logging.json_lines)
    exposed = exposed_files(Path(settings.store.path)) if str(settings.store.path) != ":memory:" else []
    if exposed:
        # The store holds personal data, password hashes and session tokens: never serve it world-readable.
        names = " ".join(str(f) for f in exposed)
        print(f"cti serve: {names}: readable by group or others; fix with: chmod 600 {names}", file=sys.stderr)
        log_event(logger, "store_files_exposed", level=logging.ERROR, files=len(exposed))
        return 2
    if settings.store.url is not None and not settings.security.session_key.get_secret_value():
        # Without it each node makes up its own key at start (the key file sits beside a SQLite file,
        # and PostgreSQL has none): a login made on one node would not verify on another, nor after a restart.
        print("cti serve: store.url (PostgreSQL) needs security.session_key, the same on every node"
              " (e.g. openssl rand -hex 32; CTI_SECURITY__SESSION_KEY_FILE)", file=sys.stderr)
        log_event(logger, "session_key_missing", level=logging.ERROR)
        return 2
    try:
        context = tls_context(settings.http)
    except TlsError as exc:
        print(f"cti serve: {exc}", file=sys.stderr)
        log_event(logger, "tls_unusable", level=logging.ERROR)
        return 2
    app = create_app(settings)
    log_event(logger, "cti_starting", host=settings.http.host, port=settings.http.port, tls=context is not None)
    # run_app handles SIGINT/SIGTERM and runs every cleanup_ctx in reverse order on the way out.
    web.run_app(app, host=settings.http.host, port=settings.http.port, ssl_context=context, print=None,
                access_log=None)
    log_event(logger, "cti_stopped")
    return 0
