"""Fixtures of the reliability suite: ``pbx`` and ``ami`` are the very fixtures of
tests/e2e/conftest.py (loaded from that file under another module name, so both suites share one
interface). Helpers live in reliability_support.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load_e2e_conftest() -> Any:
    spec = importlib.util.spec_from_file_location("cti_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_conftest()
pbx = _e2e.pbx  # the session fixture (a real Asterisk on loopback)
ami = _e2e.ami  # a driver that sees every event (cti-admin)
AmiClient = _e2e.AmiClient
Pbx = _e2e.Pbx
