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

from cti.core.cli import add_config_option
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

    backup = sub.add_parser("backup", help="online backup of the database to a new 0600 file in records.backup_dir")
    backup.add_argument("dest", metavar="DEST", nargs="?",
                        help="a new file (default: records.backup_dir/cti-backup-DATE-TIME.sqlite3, deleted after"
                             " records.backup_keep_days; a DEST elsewhere is never deleted automatically)")
    add_config_option(backup)
    backup.set_defaults(func=_backup)

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check the hash chain; name edited, deleted or reordered rows")
    verify.add_argument("--anchor", metavar="SEQ:HASH", action="append", default=[],
                        help="an audit_anchor from the log (repeatable): detects rows deleted at the end and a"
                             " rewritten chain")
    add_config_option(verify)
    verify.set_defaults(func=_audit_verify)


def _cli_principal() -> Principal:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Principal(user_id=f"cli:{user}", role=Role.ADMIN, department=None, client_ip="local")


def _with_service(args: argparse.Namespace, work: Callable[[Any, Path], Awaitable[T]]) -> T:
    settings = args.load_settings()

    async def run() -> T:
        from cti.calendar.rules import Calendars
        from cti.core.clock import system_clock
        from records.schema import migrations
        from records.service import RecordsService

        db = await args.open_store(settings.store.target, migrations())  # SQLite or PostgreSQL (cti.cli)
        try:
            service = RecordsService(db, settings.records, Calendars.from_settings(settings.calendar),
                                     system_clock, office_closes=settings.calendar.office.closes)
            return await work(service, Path(settings.store.path))
        finally:
            await db.close()

    return asyncio.run(run())


def _on_postgres(args: argparse.Namespace, command: str, instead: str) -> bool:
    """This command works on SQLite's file; with store.url it says what to do instead."""
    if args.load_settings().store.url is None:
        return False
    print(f"cti {command}: the store is on PostgreSQL (store.url); {instead}", file=sys.stderr)
    return True


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
    if _on_postgres(args, "wipe", "drop the database, its WAL archive and every dump (docs/deployment-two-nodes.md)"):
        return 2
    report = _with_service(args, lambda s, p: wipe(s, p, _cli_principal(), terminal_progress()))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["ok"] else 1


def _backup(args: argparse.Namespace) -> int:
    from cti.core.clock import system_clock
    from records.backups import backup, new_backup_path
    from records.retention import terminal_progress

    if _on_postgres(args, "backup", "use pg_dump (docs/deployment-two-nodes.md)"):
        return 2
    settings = args.load_settings()
    src = Path(settings.store.path)
    if not src.exists():
        print(f"cti backup: database {src} does not exist", file=sys.stderr)
        return 1
    dest = Path(args.dest) if args.dest else new_backup_path(Path(settings.records.backup_dir), system_clock())

    async def audit_it(service: Any, _p: Path) -> None:
        await service.audit_alone(_cli_principal(), "backup", "records", None, "ok", {"dest": "file"})

    try:
        pages = backup(src, dest, terminal_progress())
    except FileExistsError as exc:
        print(f"cti backup: {exc}", file=sys.stderr)
        return 1
    _with_service(args, audit_it)
    print(f"backup written: {dest} ({pages} pages)")
    if args.dest:
        print("note: outside records.backup_dir this copy is not deleted automatically; delete it yourself"
              f" within {settings.records.backup_keep_days} days", file=sys.stderr)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from records.audit import parse_anchor
    from records.retention import verify_audit

    try:
        anchors = [parse_anchor(text) for text in args.anchor]
    except ValueError as exc:
        print(f"cti audit verify: {exc}", file=sys.stderr)
        return 2

    async def check(service: Any, _p: Path) -> tuple[int, list[Any], Any]:
        from records.trail import head

        key = service.trail.key
        count, problems = await verify_audit(service.db, key)
        for anchor in anchors:
            problems += [p for p in (await verify_audit(service.db, key, anchor))[1]
                         if p.kind.startswith("anchor")]
        return count, problems, await service.db.read(head)

    count, problems, last = _with_service(args, check)
    if not problems:
        keyed = "HMAC-keyed" if args.load_settings().records.audit_key else "NOT keyed (set records.audit_key)"
        print(f"audit trail OK: {count} rows, hash chain intact ({keyed})"
              + (f"; matches {len(anchors)} anchor(s)" if anchors else "")
              + (f"; head {last}" if last else ""))
        return 0
    for problem in problems:
        print(f"audit row {problem.seq}: {problem.kind}: {problem.text}")
    print(f"audit trail BROKEN: {len(problems)} problem(s) in {count} rows", file=sys.stderr)
    return 1
