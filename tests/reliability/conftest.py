"""Fixtures of the reliability suite.

``pbx``: a real Asterisk 22 on loopback with the interface of tests/e2e/conftest.py (its ``Pbx``
class is reused, loaded from that file under another module name). The instance is named
``pytest-rel-<pid>`` so that it never collides with the e2e suite's ``pytest-<pid>`` when both run
in one pytest session. Helpers live in reliability_support.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_e2e_conftest() -> Any:
    # it imports its neighbours (browser.py), as pytest would find them when it collects tests/e2e
    if str(ROOT / "tests" / "e2e") not in sys.path:
        sys.path.append(str(ROOT / "tests" / "e2e"))
    spec = importlib.util.spec_from_file_location("cti_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_conftest()
Pbx = _e2e.Pbx


@pytest.fixture(scope="session")
def pbx() -> Iterator[Any]:
    if os.environ.get("CTI_SKIP_PBX") == "1":
        pytest.skip("CTI_SKIP_PBX=1: tests that need the local Asterisk PBX are skipped")
    with _e2e.running_pbx(f"pytest-rel-{os.getpid()}") as box:
        yield box
