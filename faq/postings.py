"""The FAQ index's postings: for each token, the entries that contain it and their BM25F weights,
impact-ordered (highest weight first, ties in entry order: FaqIndex.search reads a token's strongest
postings only).

All tokens' postings live in two arrays (doc ids, weights), each token a slice of them. A pair of
numpy arrays per token cost ~420 bytes of objects per token whatever its length: 4.9 of the 7.6 MiB
of the municipal FAQ's index (661 entries, 11,564 tokens; tracemalloc), ~0.6 MiB this way.
"""

from __future__ import annotations

from array import array
from collections.abc import KeysView
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Postings:
    """One token's postings (views into the table's arrays)."""

    docs: NDArray[np.int32]
    weights: NDArray[np.float64]


class PostingTable:
    def __init__(self, build: dict[str, tuple[list[int], list[float]]]) -> None:
        """`build`: token -> (doc ids, weights), in any order."""
        self._slot: dict[str, int] = {}
        bounds = array("q", [0])
        docs: list[NDArray[np.int32]] = []
        weights: list[NDArray[np.float64]] = []
        for slot, (token, (doc_ids, token_weights)) in enumerate(build.items()):
            w = np.asarray(token_weights, dtype=np.float64)
            order = np.argsort(-w, kind="stable")
            docs.append(np.asarray(doc_ids, dtype=np.int32)[order])
            weights.append(w[order])
            self._slot[token] = slot
            bounds.append(bounds[-1] + len(doc_ids))
        self._bounds = bounds
        self._docs: NDArray[np.int32] = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int32)
        self._weights: NDArray[np.float64] = np.concatenate(weights) if weights else np.zeros(0, dtype=np.float64)

    def get(self, token: str) -> Postings | None:
        slot = self._slot.get(token)
        if slot is None:
            return None
        start, end = self._bounds[slot], self._bounds[slot + 1]
        return Postings(self._docs[start:end], self._weights[start:end])

    def keys(self) -> KeysView[str]:
        return self._slot.keys()
