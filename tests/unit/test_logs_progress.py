"""Structured logs never carry phone numbers; progress is drawn on a terminal only."""

from __future__ import annotations

import io
import json
import logging

from cti.core.logs import JsonLineFormatter, PlainFormatter, log_event, redact_digits
from cti.core.progress import Progress


def test_redact_digits_masks_phone_like_runs_only() -> None:
    assert redact_digits("caller 03-1234-5678 and 09012345678 at step 3") == (
        "caller [redacted] and [redacted] at step 3"
    )


def record(event: str, exc: bool = False, **fields: object) -> logging.LogRecord:
    logger = logging.getLogger("test.logs")
    captured: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            captured.append(rec)

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        if exc:
            try:
                raise ValueError("bad number 0312345678")
            except ValueError:
                logger.exception(event)
        else:
            log_event(logger, event, **fields)
    finally:
        logger.removeHandler(handler)
    return captured[0]


def test_json_lines_carry_fields_and_redact_exception_text() -> None:
    line = json.loads(JsonLineFormatter().format(record("call_routed", call_id="1795822517.1", route="open")))
    assert line["event"] == "call_routed" and line["call_id"] == "1795822517.1" and line["level"] == "info"
    failed = json.loads(JsonLineFormatter().format(record("agi_failed", exc=True)))
    assert "0312345678" not in json.dumps(failed) and "[redacted]" in failed["error"]
    assert "0312345678" not in PlainFormatter().format(record("agi_failed", exc=True))


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_stays_quiet_when_piped() -> None:
    tty, pipe = FakeTty(), io.StringIO()
    for stream in (tty, pipe):
        with Progress("import", total=4, stream=stream, min_interval=0) as progress:
            for _ in range(4):
                progress.advance()
    assert "import: 4/4 (100%)" in tty.getvalue()
    assert pipe.getvalue() == ""
