"""The audit trail's hash chain: pure functions to compute a row's hash and verify a chain.

Each row carries the previous row's hash (`prev_hash`), and its own `hash` is over the previous hash
and the row's content. So an edited row no longer matches its hash, a deleted row breaks the link of
the row after it, and a reordered pair breaks the links at both places.

With a key (`records.audit_key`, kept outside the database) the hash is HMAC-SHA-256: someone
holding only the database file cannot rebuild a chain that verifies. Without one it is plain
SHA-256, which anyone can recompute.

A deleted tail leaves a consistent shorter chain. SQLite's AUTOINCREMENT high-water mark catches a
careless deletion, but it lives in the same file and can be lowered; the *anchor* cannot: the
daily `audit_anchor` log event (seq + hash of the head, no personal data) is kept outside the
database, and `verify_chain(..., anchor=)` checks that row `seq` still exists with that hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
CONTENT_FIELDS: tuple[str, ...] = (
    "at", "actor", "role", "department", "client_ip", "action", "record_type", "record_id", "outcome", "detail",
)
_ANCHOR = re.compile(r"^([1-9][0-9]{0,18}):([0-9a-f]{64})$")


def row_hash(prev_hash: str, content: Mapping[str, Any], key: bytes | None = None) -> str:
    payload = json.dumps(
        [prev_hash, *[content.get(name) for name in CONTENT_FIELDS]], ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    if key:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class Anchor:
    """The chain's head as it was at some moment: row `seq` had hash `hash`."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse_anchor(text: str) -> Anchor:
    """`SEQ:HASH` (as logged by the `audit_anchor` event); ValueError otherwise."""
    found = _ANCHOR.match(text.strip().lower())
    if found is None:
        raise ValueError("an anchor is SEQ:HASH (the seq and hash of an audit_anchor log event)")
    return Anchor(int(found.group(1)), found.group(2))


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str  # edited | missing_before | broken_link | tail_deleted | anchor_missing | anchor_mismatch
    text: str


def verify_chain(
    rows: Iterable[Mapping[str, Any]], high_water: int | None = None, *, key: bytes | None = None,
    anchor: Anchor | None = None,
) -> list[Problem]:
    """Check rows (in seq order); name every edited, deleted or reordered row."""
    problems: list[Problem] = []
    prev_hash = GENESIS
    prev_seq = 0
    anchored: str | None = None
    for row in rows:
        seq = int(row["seq"])
        if seq != prev_seq + 1:
            problems.append(
                Problem(seq, "missing_before", f"rows {prev_seq + 1}..{seq - 1} are missing (deleted) before row {seq}")
            )
        if row["hash"] != row_hash(str(row["prev_hash"]), row, key):
            problems.append(Problem(seq, "edited", f"row {seq} was edited: its content does not match its hash"))
        if row["prev_hash"] != prev_hash:
            problems.append(
                Problem(seq, "broken_link",
                        f"row {seq} does not follow row {prev_seq}: a row was deleted, inserted or reordered here")
            )
        if anchor is not None and seq == anchor.seq:
            anchored = str(row["hash"])
        prev_hash = str(row["hash"])
        prev_seq = seq
    if high_water is not None and high_water > prev_seq:
        problems.append(
            Problem(prev_seq + 1, "tail_deleted", f"rows {prev_seq + 1}..{high_water} at the end are missing (deleted)")
        )
    if anchor is not None:
        if anchored is None:
            problems.append(Problem(anchor.seq, "anchor_missing",
                                    f"row {anchor.seq} named by the anchor is gone: rows at the end were deleted"))
        elif anchored != anchor.hash:
            problems.append(Problem(anchor.seq, "anchor_mismatch",
                                    f"row {anchor.seq} no longer has the anchored hash: the chain was rewritten"))
    return problems
