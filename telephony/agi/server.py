"""FastAGI server (adapter): answers Asterisk's AGI(agi://host:port/<script>) requests.

Written directly on asyncio streams on purpose. panoramisk 1.4's FastAGI ``Application``
is not used: it spins at 100% CPU forever when a client connects and closes without
sending headers (what every TCP health check does), swallows ``CancelledError`` and breaks
on non-async handlers.

Each connection is one session, owned by the server: the header block must arrive within
``request_timeout`` seconds, malformed or truncated requests are closed with a log line,
and ``close()`` cancels and awaits every session still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from prometheus_client import Histogram

from cti.calendar.rules import Calendars
from cti.core.clock import Clock
from cti.core.logs import log_event
from telephony.agi.protocol import (
    MAX_HEADER_LINES,
    MAX_LINE_BYTES,
    AgiProtocolError,
    AgiRequest,
    AgiResponse,
    decode_line,
    ends_usage_block,
    parse_request,
    parse_response,
    set_variable,
    set_variables_at_once,
    starts_usage_block,
)
from telephony.agi.route import route_variables

logger = logging.getLogger("telephony.agi")  # one logger for the FastAGI server, whatever its module

# A script answers a request with the channel variables to set (name -> value).
Script = Callable[[AgiRequest], Awaitable[Mapping[str, str]]]
# Called once per answered request: (script name, seconds from complete request to last ack).
DecisionHook = Callable[[str, float], None]

DECISION_SECONDS: Final = Histogram(
    "cti_fastagi_decision_seconds",
    "FastAGI: time from a complete request to Asterisk's acknowledgement of the last variable",
    ["script"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class _SessionEnd(Exception):
    """The session stops here; `event` and `fields` say why (logged once by the caller)."""

    def __init__(self, event: str, level: int = logging.WARNING, **fields: object) -> None:
        super().__init__(event)
        self.event = event
        self.level = level
        self.fields = fields


class FastAgiServer:
    """A FastAGI server for a fixed set of scripts (e.g. ``{"route": route_script}``).

    Use ``async with FastAgiServer(...) as server`` or ``await start()`` / ``await close()``.
    ``port=0`` picks a free port; ``server.port`` is the bound one.
    """

    def __init__(
        self,
        scripts: Mapping[str, Script],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        backlog: int = 1024,
        request_timeout: float = 2.0,
        on_decision: DecisionHook | None = None,
    ) -> None:
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be > 0 seconds, got {request_timeout}")
        if backlog < 1:
            raise ValueError(f"backlog must be >= 1, got {backlog}")
        self._scripts = dict(scripts)
        self._host = host
        self._port = port
        self._backlog = backlog
        self._timeout = request_timeout
        self._on_decision = on_decision
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.requests_answered = 0
        self.requests_failed = 0

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAGI server already started")
        self._server = await asyncio.start_server(
            self._session,
            self._host,
            self._port,
            backlog=self._backlog,
            limit=MAX_LINE_BYTES + 2,
            reuse_address=True,
        )
        log_event(logger, "fastagi_listening", host=self._host, port=self.port, backlog=self._backlog)

    async def close(self) -> None:
        """Stop accepting, cancel every running session and wait for them."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()
        log_event(logger, "fastagi_stopped", port=self._port)

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    # ---- one connection --------------------------------------------------------------------
    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._serve(reader, writer)
        except _SessionEnd as end:
            self.requests_failed += 1
            log_event(logger, end.event, end.level, **end.fields)
        except (ConnectionError, OSError) as exc:
            self.requests_failed += 1
            log_event(logger, "fastagi_connection_lost", logging.WARNING, error=type(exc).__name__)
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                async with asyncio.timeout(1.0):  # not wait_for, which can drop a cancel on 3.11
                    await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await self._read_request(reader)
        started = time.perf_counter()
        script = self._scripts.get(request.script)
        if script is None:
            # Nothing is set: the dialplan sees no CTI_ROUTE and uses its static fallback.
            raise _SessionEnd(
                "fastagi_unknown_script",
                logging.ERROR,
                script=request.script[:64],
                known=sorted(self._scripts),
                uniqueid=request.uniqueid,
            )
        try:
            variables = await script(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _SessionEnd(
                "fastagi_script_failed",
                logging.ERROR,
                script=request.script,
                uniqueid=request.uniqueid,
                error=type(exc).__name__,
            ) from exc
        at_once = set_variables_at_once(variables) if len(variables) > 1 else None
        commands = [("*", at_once)] if at_once else [(n, set_variable(n, v)) for n, v in variables.items()]
        for name, command in commands:
            writer.write(command)
            await writer.drain()
            response = await self._read_response(reader, request)
            if response.text == "HANGUP":
                raise _SessionEnd(
                    "fastagi_caller_hung_up", logging.INFO, script=request.script, uniqueid=request.uniqueid
                )
            if not response.ok or (name == "*" and response.result == "-2"):  # -2: MSet not loaded
                raise _SessionEnd(
                    "fastagi_command_rejected",
                    script=request.script,
                    uniqueid=request.uniqueid,
                    variable=name,
                    code=response.code,
                )
        elapsed = time.perf_counter() - started
        self.requests_answered += 1
        DECISION_SECONDS.labels(script=request.script).observe(elapsed)
        if self._on_decision is not None:
            self._on_decision(request.script, elapsed)
        log_event(
            logger,
            "fastagi_answered",
            script=request.script,
            uniqueid=request.uniqueid,
            route=variables.get("CTI_ROUTE"),
            reason=variables.get("CTI_CLOSED_REASON") or None,
            ms=round(elapsed * 1000, 2),
        )

    async def _read_request(self, reader: asyncio.StreamReader) -> AgiRequest:
        lines: list[str] = []
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    raw = await self._readline(reader)
                    if not raw:
                        raise _SessionEnd(
                            "fastagi_request_truncated" if lines else "fastagi_closed_without_request",
                            logging.WARNING if lines else logging.INFO,
                            header_lines=len(lines),
                        )
                    if not raw.endswith(b"\n"):
                        raise _SessionEnd("fastagi_request_truncated", header_lines=len(lines))
                    line = decode_line(raw)
                    if line == "":
                        break
                    lines.append(line)
                    if len(lines) > MAX_HEADER_LINES:
                        raise AgiProtocolError(f"more than {MAX_HEADER_LINES} header lines")
                return parse_request(lines)
        except TimeoutError:
            raise _SessionEnd("fastagi_request_timeout", timeout_s=self._timeout, header_lines=len(lines)) from None
        except AgiProtocolError as exc:
            raise _SessionEnd("fastagi_bad_request", problem=str(exc), header_lines=len(lines)) from None

    async def _read_response(self, reader: asyncio.StreamReader, request: AgiRequest) -> AgiResponse:
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._readline(reader)
                if not raw.endswith(b"\n"):
                    raise _SessionEnd(
                        "fastagi_closed_before_response", script=request.script, uniqueid=request.uniqueid
                    )
                line = decode_line(raw)
                if starts_usage_block(line):
                    while not ends_usage_block(line):
                        raw = await self._readline(reader)
                        if not raw:
                            break
                        line = decode_line(raw)
                    return AgiResponse(code=520, result=None, data=None, text=line)
                return parse_response(line)
        except TimeoutError:
            raise _SessionEnd("fastagi_response_timeout", script=request.script, uniqueid=request.uniqueid) from None
        except AgiProtocolError as exc:
            raise _SessionEnd(
                "fastagi_bad_response", script=request.script, uniqueid=request.uniqueid, problem=str(exc)
            ) from None

    @staticmethod
    async def _readline(reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.readline()
        except ValueError:  # asyncio.LimitOverrunError surfaces as ValueError from readline()
            raise AgiProtocolError(f"line longer than {MAX_LINE_BYTES} bytes") from None


def make_route_script(calendars: Calendars, clock: Clock) -> Script:
    """The ``route`` script: CTI_ROUTE & co. from the calendars at the clock's now."""

    async def route(request: AgiRequest) -> Mapping[str, str]:
        return route_variables(calendars, clock())

    return route
