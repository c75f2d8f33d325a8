"""Fixtures shared by every test directory: the store's two engines (tests/pg_support.py), and a
root logger put back after each test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["pg_support"]


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """A test (or a library it loads) that points the root logger at the stderr pytest captured for
    that test would leave a handler on a closed file: every later log line then printed a
    "--- Logging error ---" traceback into other tests' output."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved
