"""The pure core stays pure: importing a pure module must not load an I/O framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("aiohttp", "panoramisk", "aiosqlite", "sqlite3", "asyncio.streams")


def pure_modules() -> list[str]:
    lines = (ROOT / "pure-modules.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_listed_pure_module_exists() -> None:
    missing = [path for path in pure_modules() if not (ROOT / path).is_file()]
    assert missing == []


@pytest.mark.parametrize("path", pure_modules())
def test_pure_module_loads_no_io_framework(path: str) -> None:
    module = path.removesuffix(".py").replace("/", ".")
    probe = (
        f"import sys, {module}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m in {FORBIDDEN!r})\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} loads {result.stdout.strip()}"
