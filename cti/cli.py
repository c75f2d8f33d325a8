"""The `cti` command: parses arguments, loads settings, dispatches to the packages.

Each package contributes its subcommands through a ``register(subparsers)`` function in its own
``cli`` module; a subcommand's handler takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cti import cli_core, store_backend
from faq import cli as screenpop_cli
from records import cli as records_cli
from telephony import cli as telephony_cli

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cti", description="CTI server for municipal call centers")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (cli_core.register, telephony_cli.register, records_cli.register, screenpop_cli.register):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The packages' handlers load the settings through this (they do not import the composition root).
    args.load_settings = lambda: cli_core.settings_or_exit(args)
    # ... and open the store on its engine through this: a SQLite file, or PostgreSQL (store.url).
    args.open_store = store_backend.open_store
    args.shown_store = store_backend.shown  # the store as it may be printed (no password)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
