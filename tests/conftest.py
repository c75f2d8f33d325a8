"""Fixtures shared by every test directory: the store's two engines (tests/pg_support.py)."""

pytest_plugins = ["pg_support"]
