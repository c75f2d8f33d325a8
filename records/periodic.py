"""The records task owned by records_ctx: handover every minute; once a day the retention purge,
the pruning of old backups and the audit anchor (the chain's head, written to the log)."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path

from cti.core.logs import log_event, redact_digits
from records import trail
from records.backups import prune_backups
from records.retention import purge
from records.service import RecordsService

logger = logging.getLogger("records")


async def log_anchor(service: RecordsService) -> None:
    """The chain's head (seq + hash, no personal data) into the log, outside the database: with it
    `cti audit verify --anchor SEQ:HASH` detects rows deleted from the end or a rewritten chain."""
    anchor = await service.db.read(trail.head)
    if anchor is not None:
        log_event(logger, "audit_anchor", seq=anchor.seq, hash=anchor.hash, keyed=service.trail.key is not None)


async def daily(service: RecordsService, backup_dir: Path) -> None:
    result = await purge(service)
    log_event(logger, "retention_purge_done", **result.counts())
    prune_backups(backup_dir, service.now(), service.settings.backup_keep_days)
    await log_anchor(service)


async def run_periodic(service: RecordsService, interval: float, job: str, backup_dir: Path | None = None) -> None:
    """Hands over due records; with job "all" also the daily work. Errors are logged, never fatal."""
    last_daily: date | None = None
    directory = backup_dir or Path(service.settings.backup_dir)
    while True:
        try:
            await service.hand_over_due()
            today = service.now().date()
            if job == "all" and last_daily != today:
                await daily(service, directory)
                last_daily = today
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_event(logger, "records_periodic_failed", level=logging.ERROR, error=type(exc).__name__,
                      detail=redact_digits(str(exc))[:200])
        await asyncio.sleep(interval)
