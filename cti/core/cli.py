"""What every package's subcommands share: the --config option and JSON output.

Loading the settings is the composition root's job: cti.cli sets ``args.load_settings()`` (the
Settings, or one clear message and exit 2) on the parsed arguments before it calls a handler, and
``args.open_store(target, migrations)`` (the gateway on the store's engine: a SQLite file, or
PostgreSQL for a ``postgresql://`` URL) with ``args.shown_store(target)`` (it without a password).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

DEFAULT_CONFIG_ENV = "CTI_CONFIG"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help=f"TOML configuration file (default: ${DEFAULT_CONFIG_ENV}, else ./cti.toml if present)",
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=None, default=str))
