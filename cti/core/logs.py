"""Structured logging: one event name plus key/value fields, as JSON lines or plain text.

Personal data (names, phone numbers, addresses, free text) must never be passed as a field;
use ids (call_id, record id, user id) instead. `redact_digits` is a last line of defence for
values that might carry a phone number (e.g. an exception text from a library).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_PHONE_LIKE = re.compile(r"\+?\d[\d\-]{6,}\d")


def redact_digits(text: str) -> str:
    """Mask digit runs long enough to be a phone number."""
    return _PHONE_LIKE.sub("[redacted]", text)


def log_event(
    logger: logging.Logger, event: str, level: int = logging.INFO, *, exc_info: object = False, **fields: Any
) -> None:
    """Log `event` with structured fields (ids and codes only, never personal data).

    ``exc_info=True`` (inside an ``except``) attaches the exception being handled: the formatters
    write its redacted last line and its traceback as code locations. (Typed ``object`` so that
    callers may pass their fields as one ``**dict``; only its truth counts.)"""
    if logger.isEnabledFor(level):
        logger.log(level, event, exc_info=bool(exc_info), extra={"cti_fields": fields})


def traceback_frames(exc_info: Any) -> list[str]:
    """Where an exception went, as "module.py:line in function", outermost call first; the frames of
    the exception it was raised from (its cause or context) follow, marked "from".

    Code locations only - no exception message, no source text, no local variables - so the frames
    carry no personal data, unlike the message (which is redacted and kept in "error")."""
    import traceback

    exc = exc_info[1]
    frames: list[str] = []
    prefix = ""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames += [f"{prefix}{_short(f.filename)}:{f.lineno} in {f.name}"
                   for f in traceback.extract_tb(exc.__traceback__)]
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        prefix = "from "
    return frames


def _short(filename: str) -> str:
    """A path relative to the package roots (site-packages/... or the project's own packages)."""
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "lib"):
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker):])
    return "/".join(parts[-2:])


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact_digits(record.getMessage()),
        }
        for key, value in getattr(record, "cti_fields", {}).items():
            payload[key] = value
        if record.exc_info:
            payload["error"] = redact_digits(self.formatException(record.exc_info).splitlines()[-1])
            payload["traceback"] = traceback_frames(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "cti_fields", {}).items())
        text = f"{record.levelname:<7} {record.name}: {redact_digits(record.getMessage())} {fields}".rstrip()
        if record.exc_info:
            text += " error=" + redact_digits(self.formatException(record.exc_info).splitlines()[-1])
            text += " traceback=" + " > ".join(traceback_frames(record.exc_info))
        return text


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries log raw protocol data (AMI frames carry caller numbers): keep them quiet.
    # aiosqlite logs SQL parameters (names, phone numbers) at DEBUG.
    for noisy in ("panoramisk", "aiohttp.access", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
