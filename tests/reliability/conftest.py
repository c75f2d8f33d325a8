"""Fixtures of the reliability suite.

``pbx``: a real Asterisk 22 on loopback with the interface of tests/e2e/conftest.py (its ``Pbx``
class is reused, loaded from that file under another module name). The instance is named
``pytest-rel-<pid>`` so that it never collides with the e2e suite's ``pytest-<pid>`` when both run
in one pytest session. Helpers live in reliability_support.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_e2e_conftest() -> Any:
    spec = importlib.util.spec_from_file_location("cti_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_conftest()
Pbx = _e2e.Pbx
CACHE = _e2e.CACHE


@pytest.fixture(scope="session")
def pbx() -> Iterator[Any]:
    if os.environ.get("CTI_SKIP_PBX") == "1":
        pytest.skip("CTI_SKIP_PBX=1: tests that need the local Asterisk PBX are skipped")
    instance = f"pytest-rel-{os.getpid()}"
    secret = uuid.uuid4().hex
    box = Pbx(instance=instance, ami_port=_e2e._free_port(), agi_port=_e2e._free_port(), ami_secret=secret)
    box.admin_secret = secret
    box._env = {
        **os.environ,
        "CTI_PBX_INSTANCE": instance,
        "CTI_PBX_AMI_PORT": str(box.ami_port),
        "CTI_PBX_AGI_PORT": str(box.agi_port),
        "CTI_PBX_AMI_SECRET": secret,
    }
    try:
        box.start()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.fail(f"the local Asterisk PBX could not be started (set CTI_SKIP_PBX=1 to skip):\n{exc}")
    try:
        yield box
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            box.stop()
        shutil.rmtree(CACHE / "asterisk-sid" / "cti" / instance, ignore_errors=True)
        with contextlib.suppress(OSError):
            (CACHE / "asterisk-sid" / "cti" / f"{instance}.lock").unlink()
