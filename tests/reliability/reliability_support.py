"""Helpers of the reliability and security suite (docs/reliability.md).

``figures(name, **values)``: print the figures of one part (``pytest -s`` shows them) and merge them
into ``artifacts/reliability/<name>.json`` (gitignored). ``LONG``: CTI_RELIABILITY_LONG=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "reliability"
LONG = os.environ.get("CTI_RELIABILITY_LONG") == "1"


def figures(name: str, **values: Any) -> None:
    """Print and store the measured figures of one part of the suite."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    current.update(values)
    path.write_text(json.dumps(current, ensure_ascii=False, indent=2, default=str) + "\n")
    print(f"\n[reliability:{name}] " + json.dumps(values, ensure_ascii=False, default=str))
