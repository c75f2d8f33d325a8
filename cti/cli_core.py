"""Core subcommands (serve, check-config, calendar) and the loading of the settings for every subcommand."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cti.config import ConfigError, Settings, load_settings, masked
from cti.core.cli import DEFAULT_CONFIG_ENV, add_config_option, print_json
from cti.store_backend import open_store, shown

EXIT_CONFIG = 2


def config_path(args: argparse.Namespace) -> Path | None:
    explicit = getattr(args, "config", None) or os.environ.get(DEFAULT_CONFIG_ENV)
    if explicit:
        return Path(explicit)
    default = Path("cti.toml")
    return default if default.exists() else None


def settings_or_exit(args: argparse.Namespace) -> Settings:
    """Load settings or print one clear message and exit 2: never start half-configured."""
    try:
        return load_settings(config_path(args))
    except ConfigError as exc:
        print(f"cti: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def register(sub: argparse._SubParsersAction[Any]) -> None:
    serve = sub.add_parser("serve", help="run the CTI server (HTTP, websocket, FastAGI, AMI link)")
    add_config_option(serve)
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check-config", help="validate a configuration file and print it, secrets masked")
    check.add_argument("file", nargs="?", help="the TOML file (default: as for --config)")
    check.set_defaults(func=_check_config)

    cal = sub.add_parser("calendar", help="call-center and ward-office calendars")
    cal_sub = cal.add_subparsers(dest="calendar_command", required=True, metavar="QUERY")
    at = cal_sub.add_parser("at", help="status of both calendars at an instant")
    at.add_argument("instant", metavar="DATETIME", help="ISO 8601 with offset, e.g. 2026-12-28T18:00:00+09:00")
    at.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(at)
    at.set_defaults(func=_calendar_at)


def _serve(args: argparse.Namespace) -> int:
    from cti.serve import run  # imported late: only `serve` needs the whole stack

    return run(settings_or_exit(args))


def _check_config(args: argparse.Namespace) -> int:
    if args.file:
        args.config = args.file
    settings = settings_or_exit(args)
    print(json.dumps(masked(settings), ensure_ascii=False, indent=2))
    return 0


def _calendar_at(args: argparse.Namespace) -> int:
    """Both calendars as cti serve sees them: the configured rules plus the runtime overrides and the
    emergency switch stored in the database (store.url, else store.path)."""
    import asyncio
    import sqlite3

    from cti.calendar.rules import Calendars, status_report
    from supervision.calendar_store import apply_state, read_stored_state

    settings = settings_or_exit(args)
    try:
        instant = datetime.fromisoformat(args.instant)
        calendars = Calendars.from_settings(settings.calendar)
        try:
            if settings.store.url is None:
                apply_state(calendars, asyncio.run(read_stored_state(Path(settings.store.path))))
            else:
                apply_state(calendars, asyncio.run(_stored_state_on_postgres(settings.store.url)))
        except sqlite3.Error as exc:  # PostgreSQL's errors come as sqlite3.Error subclasses too (cti/pg_gateway.py)
            print(f"cti calendar at: cannot read the stored overrides in {shown(settings.store.target)}: {exc}",
                  file=sys.stderr)
            return EXIT_CONFIG
        report = status_report(calendars, instant)
    except ValueError as exc:
        print(f"cti calendar at: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print_json(report)
    else:
        print(_describe_report(report))
    return 0


async def _stored_state_on_postgres(url: str) -> Any:
    from supervision.calendar_store import read_state

    db = await open_store(url, {})
    try:
        return await db.read(read_state)
    finally:
        await db.close()


def _describe_report(report: dict[str, Any]) -> str:
    lines = [f"時刻 {report['at']}"]
    for key, label in (("call_center", "コールセンター"), ("office", "区役所（開庁）")):
        part = report[key]
        state = "開いています" if part["open"] else f"閉まっています（{part['reason_text']}）"
        lines.append(f"{label}: {state}")
        if part["next_open"]:
            lines.append(f"  次の開始: {part['next_open']}")
    lines.append(f"引き継ぎ日: {report['handover_date']}")
    return "\n".join(lines)
