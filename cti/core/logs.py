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


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with structured fields (ids and codes only, never personal data)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"cti_fields": fields})


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
        return json.dumps(payload, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "cti_fields", {}).items())
        text = f"{record.levelname:<7} {record.name}: {redact_digits(record.getMessage())} {fields}".rstrip()
        if record.exc_info:
            text += " error=" + redact_digits(self.formatException(record.exc_info).splitlines()[-1])
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
