"""Benchmark figures: each printed beside its target and the baseline measured in the same run."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = False
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "ok" if ok else "MISSED"


def table(figures: list[Figure]) -> str:
    rows = [("bench", "figure", "value", "target", "", "note")]
    for f in figures:
        target = "" if f.target is None else f"{'>=' if f.higher_is_better else '<='} {f.target:g} {f.unit}"
        rows.append((f.bench, f.name, f"{f.value:,.3f} {f.unit}", target, f.verdict, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows)


def machine() -> dict[str, str]:
    import os

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(os.cpu_count()),
            "system": platform.platform()}


def write_json(figures: list[Figure], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "figures": [asdict(f) | {"verdict": f.verdict} for f in figures]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
