"""Fuzzing (docs/reliability.md, part 4). CTI_FUZZ_LONG=1 runs the long mode (>= 1M inputs per target)."""

from __future__ import annotations

import os
from typing import Any

from figures_support import ARTIFACTS, ROOT, record_figures

__all__ = ["ARTIFACTS", "LONG", "ROOT", "figures"]

LONG = os.environ.get("CTI_FUZZ_LONG") == "1"


def figures(name: str, **values: Any) -> None:
    """Print and store (artifacts/reliability/<name>.json) the figures of one fuzz target."""
    record_figures("fuzz", name, values)
