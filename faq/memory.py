"""Giving back what only an index build needed (called after each build, faq/service.py).

- **the dictionary's pages**: Sudachi mmaps its 193 MB system.dic (read-only, file-backed, shared
  with every other process that maps it). Analysing every entry touches most of it, and each touched
  page counts in this process's RSS (~150 MiB after the municipal FAQ's 661 entries) for as long as
  the mapping lives, although a search needs only the pages its own words touch. MADV_DONTNEED on a
  read-only file mapping drops the process's page-table entries, not the data: the page cache keeps
  the file, and the next analysis faults in (from memory, no I/O) just the pages it reads.
- **the C heap**: the build runs in a worker thread, whose malloc arena keeps the freed Counters'
  and lists' space; malloc_trim gives the free part back to the kernel.

Both are Linux/glibc calls; elsewhere they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from pathlib import Path

MADV_DONTNEED = 4
_mapped: dict[Path, list[tuple[int, int]]] = {}


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def mappings_of(path: Path, maps: str) -> list[tuple[int, int]]:
    """(start, end) of each mapping of `path` in a /proc/PID/maps text."""
    ranges: list[tuple[int, int]] = []
    wanted = str(path)
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == wanted:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


def resident_kb(path: Path) -> int:
    """kB of this process's mappings of `path` that are resident (/proc/self/smaps; 0 elsewhere)."""
    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        return 0
    wanted, total, inside = str(path), 0, False
    for line in smaps.read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            inside = len(fields) == 6 and fields[5] == wanted
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def drop_mapped_pages(path: Path) -> int:
    """Drop this process's resident pages of every read-only mapping of `path`; bytes advised."""
    libc = _libc()
    if libc is None:
        return 0
    ranges = _mapped.get(path)
    if not ranges:  # a mapping stays where it is: /proc/self/maps is read once
        ranges = _mapped[path] = mappings_of(path, Path("/proc/self/maps").read_text())
    advised = 0
    for start, end in ranges:
        if libc.madvise(start, end - start, MADV_DONTNEED) == 0:
            advised += end - start
    return advised


def trim_heap() -> None:
    """Return the malloc arenas' free memory to the kernel (glibc)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
