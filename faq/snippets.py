"""Pure: where the query's tokens are in a text (highlight spans, mapped back to the original
characters) and the answer excerpt shown under a hit. Offsets are [start, end) code points, never HTML."""

from __future__ import annotations

import re
from collections.abc import Sequence

SNIPPET_CHARS = 80
SNIPPET_LEAD = 16
_COVERED = re.compile(rb"\x01+")


def match_spans(norm: str, tokens: set[str]) -> list[tuple[int, int]]:
    """Merged [start, end) spans of normalised text covered by any query token."""
    covered = bytearray(len(norm))
    for tok in tokens:
        size = len(tok)
        start = norm.find(tok)
        while start >= 0:
            covered[start : start + size] = b"\x01" * size
            start = norm.find(tok, start + 1)
    return [m.span() for m in _COVERED.finditer(covered)]


def map_spans(spans: list[tuple[int, int]], origin: list[int] | None, length: int) -> list[tuple[int, int]]:
    if origin is None:
        return spans
    mapped = []
    for start, end in spans:
        o_end = origin[end] if end < len(origin) else length
        mapped.append((origin[start], o_end))
    return mapped


def snippet(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """An excerpt of about SNIPPET_CHARS around the densest cluster of highlights."""
    if not spans:
        start = 0
    else:
        best, start = -1, 0
        for anchor, _end in spans:
            lo = max(0, anchor - SNIPPET_LEAD)
            inside = sum(e - s for s, e in spans if s >= lo and e <= lo + SNIPPET_CHARS)
            if inside > best:
                best, start = inside, lo
    end = min(len(text), start + SNIPPET_CHARS)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    body = text[start:end].replace("\r", " ").replace("\n", " ")
    shift = len(prefix) - start
    local = [(max(s, start) + shift, min(e, end) + shift) for s, e in spans if e > start and s < end]
    return prefix + body + suffix, local


def render_highlights(
    text: str, spans: Sequence[tuple[int, int]], open_mark: str = "【", close_mark: str = "】"
) -> str:
    """Text with each highlighted span wrapped in markers (for terminals and plain-text views)."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        out.append(text[pos:start])
        out.append(open_mark + text[start:end] + close_mark)
        pos = end
    out.append(text[pos:])
    return "".join(out)
