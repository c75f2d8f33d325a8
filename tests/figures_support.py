"""Figures of the reliability and fuzzing suites: printed (``pytest -s`` shows them) and merged into
``artifacts/reliability/<name>.json`` (gitignored). Shared by tests/reliability and tests/fuzz."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "reliability"


def record_figures(suite: str, name: str, values: dict[str, Any]) -> None:
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
    print(f"\n[{suite}:{name}] " + json.dumps(values, ensure_ascii=False, default=str))
