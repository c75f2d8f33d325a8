"""Subcommands of records: purge, export, wipe, backup, audit verify."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from cti.cli_core import add_config_option, settings_or_exit
from cti.core.principal import Principal, Role

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    purge = sub.add_parser("purge", help="delete personal data older than records.retention_days")
    purge.add_argument("--dry-run", action="store_true", help="count what would be purged, change nothing")
    add_config_option(purge)
    purge.set_defaults(func=_purge)

    export = sub.add_parser("export", help="export every record as JSON Lines plus a manifest (audited)")
    export.add_argument("--out", required=True, metavar="DIR", help="an empty or new directory")
    add_config_option(export)
    export.set_defaults(func=_export)

    wipe = sub.add_parser("wipe", help="erase ALL personal data (contract end) and print a verification report")
    wipe.add_argument("--confirm", action="store_true", help="required: really erase")
    add_config_option(wipe)
    wipe.set_defaults(func=_wipe)

    backup = sub.add_parser("backup", help="online backup of the database to a new file")
    backup.add_argument("dest", metavar="DEST")
    add_config_option(backup)
    backup.set_defaults(func=_backup)

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check the hash chain; name edited, deleted or reordered rows")
    add_config_option(verify)
    verify.set_defaults(func=_audit_verify)


def _cli_principal() -> Principal:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Principal(user_id=f"cli:{user}", role=Role.ADMIN, department=None, client_ip="local")


def _with_service(args: argparse.Namespace, work: Callable[[Any, Path], Awaitable[T]]) -> T:
    settings = settings_or_exit(args)

    async def run() -> T:
        from cti.calendar.rules import Calendars
        from cti.core.clock import system_clock
        from cti.db import open_database
        from records.schema import migrations
        from records.store import RecordsService

        db = await open_database(settings.store.path, migrations())
        try:
            service = RecordsService(db, settings.records, Calendars.from_settings(settings.calendar),
                                     system_clock, office_closes=settings.calendar.office.closes)
            return await work(service, Path(settings.store.path))
        finally:
            await db.close()

    return asyncio.run(run())


def _purge(args: argparse.Namespace) -> int:
    from records.retention import purge, terminal_progress

    result = _with_service(args, lambda s, _p: purge(s, dry_run=args.dry_run, who=_cli_principal(),
                                                     progress=terminal_progress()))
    verb = "would purge" if args.dry_run else "purged"
    print(f"{verb} (collected at or before {result.counts()['cutoff']}): "
          + ", ".join(f"{t}={n}" for t, n in result.rows.items()))
    return 0


def _export(args: argparse.Namespace) -> int:
    from records.retention import export, terminal_progress

    try:
        manifest = _with_service(args, lambda s, _p: export(s, Path(args.out), _cli_principal(),
                                                            terminal_progress()))
    except FileExistsError as exc:
        print(f"cti export: {exc}", file=sys.stderr)
        return 1
    for name, info in manifest["files"].items():
        print(f"{name}: {info['rows']} rows sha256={info['sha256']}")
    print(f"manifest: {Path(args.out) / 'manifest.json'}")
    return 0


def _wipe(args: argparse.Namespace) -> int:
    from records.retention import terminal_progress, wipe

    if not args.confirm:
        print("cti wipe: this erases ALL personal data; run again with --confirm", file=sys.stderr)
        return 2
    report = _with_service(args, lambda s, p: wipe(s, p, _cli_principal(), terminal_progress()))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["ok"] else 1


def _backup(args: argparse.Namespace) -> int:
    from records.retention import backup, terminal_progress

    settings = settings_or_exit(args)
    src = Path(settings.store.path)
    if not src.exists():
        print(f"cti backup: database {src} does not exist", file=sys.stderr)
        return 1

    async def audit_it(service: Any, _p: Path) -> None:
        await service.audit_alone(_cli_principal(), "backup", "records", None, "ok", {"dest": "file"})

    try:
        pages = backup(src, Path(args.dest), terminal_progress())
    except FileExistsError as exc:
        print(f"cti backup: {exc}", file=sys.stderr)
        return 1
    _with_service(args, audit_it)
    print(f"backup written: {args.dest} ({pages} pages)")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from records.retention import verify_audit

    count, problems = _with_service(args, lambda s, _p: verify_audit(s.db))
    if not problems:
        print(f"audit trail OK: {count} rows, hash chain intact")
        return 0
    for problem in problems:
        print(f"audit row {problem.seq}: {problem.kind}: {problem.text}")
    print(f"audit trail BROKEN: {len(problems)} problem(s) in {count} rows", file=sys.stderr)
    return 1
