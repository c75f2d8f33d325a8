"""Pure evaluation of a FAQ ranking against a labelled query set (tests/fixtures/faq/queries.jsonl).

recall@k is |top-k ∩ relevant| / min(k, |relevant|), so a query with 11 relevant entries can still
reach 1.0 when its top 5 are all relevant; hit@k is the share of queries with at least one relevant
entry in the top k.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[str]
    note: str = ""


@dataclass(frozen=True)
class QueryResult:
    query: LabelledQuery
    ranked: list[str]
    recall: float
    hit: bool


@dataclass(frozen=True)
class Evaluation:
    k: int
    results: list[QueryResult]

    @property
    def recall(self) -> float:
        return sum(r.recall for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def hit_rate(self) -> float:
        return sum(1 for r in self.results if r.hit) / len(self.results) if self.results else 0.0

    def misses(self) -> list[QueryResult]:
        return [r for r in self.results if r.recall < 1.0]


def parse_queries(text: str) -> list[LabelledQuery]:
    """Read the JSON-lines query set; raise ValueError naming the line on a bad entry."""
    queries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            query = item["query"]
            relevant = item["relevant"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"queries line {number}: {exc}") from None
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"queries line {number}: query must be non-empty text")
        if not isinstance(relevant, list) or not relevant:
            raise ValueError(f"queries line {number}: relevant must be a non-empty list")
        queries.append(LabelledQuery(query, frozenset(str(r) for r in relevant), str(item.get("note", ""))))
    return queries


def evaluate(rank: Callable[[str, int], Sequence[str]], queries: Sequence[LabelledQuery], k: int = 5) -> Evaluation:
    """Run `rank(query, k)` (returning entry ids, best first) over the set and score it."""
    results = []
    for labelled in queries:
        ranked = list(rank(labelled.query, k))[:k]
        found = len(set(ranked) & labelled.relevant)
        recall = found / min(k, len(labelled.relevant))
        results.append(QueryResult(labelled, ranked, recall, found > 0))
    return Evaluation(k, results)
