"""Kept for imports from before the split: the records service now lives in records.service
(units of work in records.contacts, records.callbacks, records.pop_view, records.trail)."""

from records.periodic import run_periodic
from records.service import RecordsService
from records.trail import SYSTEM

__all__ = ["SYSTEM", "RecordsService", "run_periodic"]
