"""Retention (purge after retention_days), contract-end export and wipe, audit verification.

Purging clears the personal-data columns (records.schema.PERSONAL_COLUMNS) and keeps the rest as
statistics. secure_delete zeroes freed cell space, then VACUUM rewrites the file and
wal_checkpoint(TRUNCATE) empties the -wal file, so the purged bytes leave the disk files.
Nothing written to the log or to purge_runs carries personal data: only counts and ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from cti.core.clock import require_aware
from cti.core.logs import log_event
from cti.core.principal import Principal
from cti.gateway import Gateway
from records import rules, trail
from records.audit import Anchor, Problem
from records.schema import COLLECTED_AT, EXPORT_TABLES, PERSONAL_COLUMNS
from records.service import RecordsService
from records.trail import SYSTEM

logger = logging.getLogger("records.retention")

Progress = Callable[[str, int, int], None]


def terminal_progress(stream: TextIO | None = None) -> Progress | None:
    """A progress printer when the stream is a terminal; None (quiet) when piped."""
    out = stream or sys.stderr
    if not out.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        pct = 100 if total == 0 else int(done * 100 / total)
        out.write(f"\r{stage}: {done}/{total} ({pct}%)")
        if done >= total:
            out.write("\n")
        out.flush()

    return show


@dataclass
class PurgeResult:
    cutoff: datetime
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    checkpoint: tuple[int, int, int] | None = None

    def counts(self) -> dict[str, Any]:
        return {"cutoff": rules.iso(self.cutoff), "dry_run": self.dry_run, **self.rows,
                "checkpoint_busy": None if self.checkpoint is None else self.checkpoint[0]}


def _clear_sql(table: str, where: str) -> str:
    sets = ", ".join(f"{c} = NULL" for c in PERSONAL_COLUMNS[table])
    return f"UPDATE {table} SET {sets}, purged_at = ? WHERE {where}"


def _pending_where(table: str) -> str:
    any_value = " OR ".join(f"{c} IS NOT NULL" for c in PERSONAL_COLUMNS[table])
    return f"{COLLECTED_AT[table]} <= ? AND ({any_value})"


def _scrub(conn: sqlite3.Connection) -> tuple[int, int, int]:
    conn.execute("VACUUM")
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


async def scrub_files(service: RecordsService) -> tuple[int, int, int]:
    """VACUUM and truncate the WAL so freed personal data leaves the database files."""
    busy, log_frames, done = await service.db.maintenance(_scrub)
    if busy:
        log_event(logger, "wal_checkpoint_busy", level=logging.WARNING, log_frames=log_frames, done=done)
    return busy, log_frames, done


def _purge_unit(conn: sqlite3.Connection, service: RecordsService, at: datetime, cutoff_text: str, kind: str,
                dry_run: bool, who: Principal, progress: Progress | None) -> dict[str, int]:
    rows: dict[str, int] = {}
    tables = list(PERSONAL_COLUMNS)
    for i, table in enumerate(tables):
        if progress:
            progress(kind, i, len(tables))
        if dry_run:
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE {_pending_where(table)}", (cutoff_text,)).fetchone()
            rows[table] = int(row[0]) if row else 0
        else:
            rows[table] = conn.execute(_clear_sql(table, _pending_where(table)), (rules.iso(at), cutoff_text)).rowcount
    if progress:
        progress(kind, len(tables), len(tables))
    if not dry_run:
        conn.execute(
            "INSERT INTO purge_runs(at, cutoff, kind, contacts, callbacks, faq_gaps) VALUES (?,?,?,?,?,?)",
            (rules.iso(at), cutoff_text, kind, rows["contacts"], rows["callbacks"], rows["faq_gaps"]),
        )
        if any(rows.values()) or kind == "wipe":
            service.trail.append(conn, who, kind, "records", None, detail={"cutoff": cutoff_text, **rows}, at=at)
    return rows


async def purge(
    service: RecordsService,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    who: Principal = SYSTEM,
    progress: Progress | None = None,
    kind: str = "purge",
) -> PurgeResult:
    """Delete personal data collected at or before now - retention_days (everything for kind=wipe)."""
    at = require_aware(now or service.now(), "now")
    cutoff = (rules.retention_cutoff(at, service.settings.retention_days) if kind == "purge"
              else datetime.max.replace(tzinfo=at.tzinfo))
    cutoff_text = rules.iso(cutoff) if kind == "purge" else "9999-12-31T23:59:59"
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    unit = partial(_purge_unit, service=service, at=at, cutoff_text=cutoff_text, kind=kind, dry_run=dry_run,
                   who=who, progress=progress)
    result.rows = await (service.db.read(unit) if dry_run else service.db.write(unit))
    if not dry_run and (any(result.rows.values()) or kind == "wipe"):
        result.checkpoint = await scrub_files(service)
    log_event(logger, f"records_{kind}", **result.counts())
    return result


def _prepare_empty_dir(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out_dir, 0o700)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; export refuses to mix with older files")


def _private_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _export_unit(conn: sqlite3.Connection, service: RecordsService, out_dir: Path, who: Principal, at: datetime,
                 progress: Progress | None) -> dict[str, dict[str, Any]]:
    """(database thread, one transaction: one snapshot of every table) the files and the audit row."""
    files: dict[str, dict[str, Any]] = {}
    totals = {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in EXPORT_TABLES}
    grand, done = sum(totals.values()), 0
    for table in EXPORT_TABLES:
        path = out_dir / f"{table}.jsonl"
        digest = hashlib.sha256()
        count = 0
        with os.fdopen(_private_file(path), "wb") as fh:
            order = "seq" if table == "audit" else "rowid"
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                line = (json.dumps(dict(row), ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
                fh.write(line)
                digest.update(line)
                count += 1
                done += 1
                if progress and done % 500 == 0:
                    progress("export", done, grand)
            fh.flush()
            os.fsync(fh.fileno())
        files[path.name] = {"table": table, "rows": count, "sha256": digest.hexdigest()}
    service.trail.append(conn, who, "export", "records", None,
                         detail={"rows": {v["table"]: v["rows"] for v in files.values()}}, at=at)
    if progress:
        progress("export", grand, grand)
    return files


async def export(service: RecordsService, out_dir: Path, who: Principal,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Write every table as JSON Lines plus manifest.json (counts, SHA-256); audited; files 0600."""
    _prepare_empty_dir(out_dir)
    at = service.now()
    files = await service.db.write(partial(_export_unit, service=service, out_dir=out_dir, who=who, at=at,
                                           progress=progress))
    manifest = {"exported_at": rules.iso(at), "exported_by": who.user_id, "format": "jsonl", "files": files}
    with os.fdopen(_private_file(out_dir / "manifest.json"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    log_event(logger, "records_export", files=len(files), rows=sum(f["rows"] for f in files.values()))
    return manifest


def personal_values(conn: sqlite3.Connection) -> list[str]:
    values: list[str] = []
    for table, columns in PERSONAL_COLUMNS.items():
        for column in columns:
            rows = conn.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL").fetchall()
            values.extend(str(r[0]) for r in rows)
    return values


def remaining_personal(conn: sqlite3.Connection) -> dict[str, int]:
    counts = {}
    for table, columns in PERSONAL_COLUMNS.items():
        any_value = " OR ".join(f"{c} IS NOT NULL" for c in columns)
        counts[table] = int(conn.execute(f"SELECT count(*) FROM {table} WHERE {any_value}").fetchone()[0])
    return counts


def find_bytes(paths: list[Path], needles: list[str]) -> list[str]:
    """Which needles (UTF-8) still occur in any of the files."""
    blobs = [p.read_bytes() for p in paths if p.exists()]
    return [n for n in needles if any(n.encode("utf-8") in b for b in blobs)]


async def wipe(service: RecordsService, db_path: Path, who: Principal, progress: Progress | None = None,
               sample: int = 2000) -> dict[str, Any]:
    """Erase all personal data now (contract end) and verify: no values left, no bytes left in the files."""
    values = await service.db.read(personal_values)
    probe = [v for v in values if len(v.encode("utf-8")) >= 4]
    if len(probe) > sample:
        probe = random.Random(0).sample(probe, sample)
    result = await purge(service, dry_run=False, who=who, progress=progress, kind="wipe")
    remaining = await service.db.read(remaining_personal)
    files = [db_path, Path(f"{db_path}-wal")]
    found = find_bytes(files, probe)
    report = {
        "wiped_rows": result.rows,
        "remaining_personal_values": remaining,
        "probed_values": len(probe),
        "probed_values_still_in_files": len(found),
        "files": {str(p): (p.stat().st_size if p.exists() else None) for p in files},
        "wal_checkpoint_busy": result.checkpoint[0] if result.checkpoint else None,
    }
    report["ok"] = not any(remaining.values()) and not found and not report["wal_checkpoint_busy"]
    return report


async def verify_audit(db: Gateway, key: bytes | None = None,
                       anchor: Anchor | None = None) -> tuple[int, list[Problem]]:
    return await db.read(partial(trail.verify, key=key, anchor=anchor))
