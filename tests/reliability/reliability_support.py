"""Helpers of the reliability and security suite (docs/reliability.md).

``figures(name, **values)``: print the figures of one part (``pytest -s`` shows them) and merge them
into ``artifacts/reliability/<name>.json`` (gitignored). ``LONG``: CTI_RELIABILITY_LONG=1.
``stored(url)``: the call ids with a consent and with a callback in the store at ``url``.
"""

from __future__ import annotations

import os
from typing import Any

from figures_support import ARTIFACTS, ROOT, record_figures

from cti.store_backend import open_store
from records.schema import migrations

__all__ = ["ARTIFACTS", "LONG", "ROOT", "figures", "stored"]

LONG = os.environ.get("CTI_RELIABILITY_LONG") == "1"


def figures(name: str, **values: Any) -> None:
    """Print and store the measured figures of one part of the suite."""
    record_figures("reliability", name, values)


async def stored(url: str) -> dict[str, set[str]]:
    """The call ids with a consent and with a callback in the store at `url` (SQLite or PostgreSQL)."""
    db = await open_store(url, migrations())
    try:
        return await db.read(lambda c: {
            kind: {r[0] for r in c.execute(f"SELECT call_id FROM {table}")}
            for kind, table in (("consent", "consents"), ("callback", "callbacks"))})
    finally:
        await db.close()
