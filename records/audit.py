"""The audit trail's hash chain: pure functions to compute a row's hash and verify a chain.

Each row carries the previous row's hash (`prev_hash`), and its own `hash` is SHA-256 over the
previous hash and the row's content. So an edited row no longer matches its hash, a deleted row
breaks the link of the row after it, and a reordered pair breaks the links at both places.
A deleted tail is found by comparing the last seq with SQLite's AUTOINCREMENT high-water mark.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
CONTENT_FIELDS: tuple[str, ...] = (
    "at", "actor", "role", "department", "client_ip", "action", "record_type", "record_id", "outcome", "detail",
)


def row_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    payload = json.dumps(
        [prev_hash, *[content.get(name) for name in CONTENT_FIELDS]], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str  # edited | missing_before | broken_link | tail_deleted
    text: str


def verify_chain(rows: Iterable[Mapping[str, Any]], high_water: int | None = None) -> list[Problem]:
    """Check rows (in seq order); name every edited, deleted or reordered row."""
    problems: list[Problem] = []
    prev_hash = GENESIS
    prev_seq = 0
    for row in rows:
        seq = int(row["seq"])
        if seq != prev_seq + 1:
            problems.append(
                Problem(seq, "missing_before", f"rows {prev_seq + 1}..{seq - 1} are missing (deleted) before row {seq}")
            )
        if row["hash"] != row_hash(str(row["prev_hash"]), row):
            problems.append(Problem(seq, "edited", f"row {seq} was edited: its content does not match its hash"))
        if row["prev_hash"] != prev_hash:
            problems.append(
                Problem(seq, "broken_link",
                        f"row {seq} does not follow row {prev_seq}: a row was deleted, inserted or reordered here")
            )
        prev_hash = str(row["hash"])
        prev_seq = seq
    if high_water is not None and high_water > prev_seq:
        problems.append(
            Problem(prev_seq + 1, "tail_deleted", f"rows {prev_seq + 1}..{high_water} at the end are missing (deleted)")
        )
    return problems
