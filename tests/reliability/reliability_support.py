"""Helpers of the reliability and security suite (docs/reliability.md).

``figures(name, **values)``: print the figures of one part (``pytest -s`` shows them) and merge them
into ``artifacts/reliability/<name>.json`` (gitignored). ``LONG``: CTI_RELIABILITY_LONG=1.
"""

from __future__ import annotations

import os
from typing import Any

from figures_support import ARTIFACTS, ROOT, record_figures

__all__ = ["ARTIFACTS", "LONG", "ROOT", "figures"]

LONG = os.environ.get("CTI_RELIABILITY_LONG") == "1"


def figures(name: str, **values: Any) -> None:
    """Print and store the measured figures of one part of the suite."""
    record_figures("reliability", name, values)
