"""Progress for long-running CLI work: a live line on a terminal, silence when piped."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`with Progress("import", total=n) as p: p.advance()` - draws on stderr only if it is a tty."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 min_interval: float = 0.1) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._min_interval = min_interval
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        if self.total:
            pct = 100 * self.done // self.total
            text = f"\r{self.label}: {self.done}/{self.total} ({pct}%)"
        else:
            text = f"\r{self.label}: {self.done}"
        self.stream.write(text)
        self.stream.flush()
