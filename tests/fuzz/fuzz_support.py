"""Fuzzing (docs/reliability.md, part 4). CTI_FUZZ_LONG=1 runs the long mode (>= 1M inputs per target)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "reliability"
LONG = os.environ.get("CTI_FUZZ_LONG") == "1"


def figures(name: str, **values: Any) -> None:
    """Print and store (artifacts/reliability/<name>.json) the figures of one fuzz target."""
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
    print(f"\n[fuzz:{name}] " + json.dumps(values, ensure_ascii=False, default=str))
