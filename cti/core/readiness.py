"""Readiness: each dependency registers a check; /readyz reports them all (503 unless all are ready)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Check = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass
class Readiness:
    checks: dict[str, Check] = field(default_factory=dict)

    def register(self, name: str, check: Check) -> None:
        if name in self.checks:
            raise ValueError(f"readiness check {name!r} registered twice")
        self.checks[name] = check

    def unregister(self, name: str) -> None:
        self.checks.pop(name, None)

    def report(self) -> tuple[bool, dict[str, Any]]:
        components: dict[str, Any] = {}
        ready = True
        for name, check in sorted(self.checks.items()):
            try:
                ok, detail = check()
            except Exception as exc:  # a broken check is a not-ready component, not a 500
                ok, detail = False, {"error": type(exc).__name__}
            components[name] = {"ready": ok, **detail}
            ready = ready and ok
        return ready, components
