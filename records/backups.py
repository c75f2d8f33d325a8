"""Backups of the database: written 0600 into `records.backup_dir`, deleted after `records.backup_keep_days`.

A backup is a full copy, personal data included, so it falls under retention too: the daily
records task deletes the backups in the directory older than `backup_keep_days` (at most
`retention_days`). Only files named like ours (`cti-backup-*.sqlite3`) are ever deleted.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from cti.core.clock import TOKYO, require_aware
from cti.core.logs import log_event

logger = logging.getLogger("records.backups")

Progress = Callable[[str, int, int], None]
NAME = re.compile(r"^cti-backup-[0-9]{8}-[0-9]{6}(-[0-9]+)?\.sqlite3$")


def backup_name(at: datetime) -> str:
    return f"cti-backup-{require_aware(at, 'at').astimezone(TOKYO):%Y%m%d-%H%M%S}.sqlite3"


def new_backup_path(directory: Path, at: datetime) -> Path:
    """A new file name in `directory` for a backup taken at `at` (never an existing one)."""
    path = directory / backup_name(at)
    n = 1
    while path.exists():
        path = directory / backup_name(at).replace(".sqlite3", f"-{n}.sqlite3")
        n += 1
    return path


def backup(src_path: Path, dest: Path, progress: Progress | None = None) -> int:
    """SQLite online backup (consistent while the server writes) into a new 0600 file; returns pages."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new file")
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    dst = sqlite3.connect(dest)
    pages = 0
    try:
        def step(status: int, remaining: int, total: int) -> None:
            nonlocal pages
            pages = total
            if progress:
                progress("backup", total - remaining, total)

        src.backup(dst, pages=256, progress=step)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    os.chmod(dest, 0o600)
    return pages


def prune_backups(directory: Path, now: datetime, keep_days: int) -> list[str]:
    """Delete our backups in `directory` last written more than `keep_days` ago; their names."""
    if not directory.is_dir():
        return []
    cutoff = require_aware(now, "now").timestamp() - timedelta(days=keep_days).total_seconds()
    removed = []
    for path in sorted(directory.iterdir()):
        if NAME.match(path.name) and path.is_file() and path.stat().st_mtime <= cutoff:
            path.unlink()
            removed.append(path.name)
    if removed:
        log_event(logger, "backups_removed", count=len(removed), keep_days=keep_days)
    return removed
