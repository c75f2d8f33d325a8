"""A TCP proxy for fault injection: forwards bytes between a client and an upstream server, and
on request cuts every current connection (RST both sides) or freezes them (the sockets stay open,
nothing is forwarded any more: a half-open link as a dead NAT or a pulled cable leaves it).
New connections after a cut or a freeze are forwarded normally."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class _Pipe:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    frozen: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.connections = 0
        self.bytes_forwarded = 0
        self._server: asyncio.Server | None = None
        self._pipes: list[_Pipe] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        tasks = [t for p in self._pipes for t in p.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def freeze(self) -> int:
        """Stop forwarding on every current connection, sockets left open. Returns how many."""
        live = [p for p in self._pipes if not p.frozen.is_set()]
        for pipe in live:
            pipe.frozen.set()
        return len(live)

    def cut(self) -> int:
        """Abort every current connection (both sides see a reset). Returns how many."""
        pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            for writer in (pipe.client, pipe.upstream):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
        return len(pipes)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pipe = _Pipe(writer, up_writer)
        self._pipes.append(pipe)
        pipe.tasks = [asyncio.create_task(self._pump(reader, up_writer, pipe)),
                      asyncio.create_task(self._pump(up_reader, writer, pipe))]
        with contextlib.suppress(asyncio.CancelledError):  # close() cancelled the pumps
            await asyncio.gather(*pipe.tasks, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipe: _Pipe) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if pipe.frozen.is_set():
                    continue  # swallowed: the other side hears nothing, and no FIN either
                writer.write(data)
                self.bytes_forwarded += len(data)
                await writer.drain()
            if not pipe.frozen.is_set():
                with contextlib.suppress(Exception):
                    writer.write_eof()
        except (ConnectionError, OSError):
            pass
        if pipe.frozen.is_set():
            await asyncio.Event().wait()  # hold the socket open until close() cancels us
