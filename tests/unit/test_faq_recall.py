"""Recall of the FAQ ranking on the labelled operator query set (tests/fixtures/faq/queries.jsonl).

Measured when the set was written (113 queries, real municipal FAQ, 661 entries): recall@5 = 0.922,
hit@5 = 1.00 with plain bigram BM25F; 0.938 / 1.00 after the query-side token weights and the
風疹/麻疹 notation synonyms. A naive substring scan gets 0.671 / 0.779 on the same set
(bench/faq_bench.py). The floors below leave a small margin for tuning; a ranking change that drops
below them is a regression, not noise (the ranking is deterministic).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faq.evaluation import LabelledQuery, evaluate, parse_queries
from faq.index import FaqIndex, parse_faq

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"
RECALL_FLOOR = 0.90
HIT_FLOOR = 0.98


@pytest.fixture(scope="module")
def index() -> FaqIndex:
    path = FIXTURES / "kosodate_opendata_faq_corpus.json"
    return FaqIndex(parse_faq(path.read_bytes(), path.name).entries)


@pytest.fixture(scope="module")
def queries() -> list[LabelledQuery]:
    return parse_queries((FIXTURES / "queries.jsonl").read_text(encoding="utf-8"))


def test_query_set_is_large_realistic_and_consistent(index: FaqIndex, queries: list[LabelledQuery]) -> None:
    assert len(queries) >= 60
    assert sum(1 for q in queries if len(q.query) <= 2) >= 15
    assert len({q.query for q in queries}) == len(queries)
    for q in queries:
        missing = [r for r in q.relevant if index.get(r) is None]
        assert not missing, f"{q.query}: unknown faq_ids {missing}"


def test_recall_at_5_meets_the_floor(index: FaqIndex, queries: list[LabelledQuery]) -> None:
    result = evaluate(lambda q, k: [h.entry.id for h in index.search(q, k)], queries, k=5)
    report = "\n".join(f"{r.recall:.2f} {r.query.query} -> {r.ranked}" for r in result.misses())
    assert result.recall >= RECALL_FLOOR, f"recall@5 {result.recall:.3f} < {RECALL_FLOOR}\n{report}"
    assert result.hit_rate >= HIT_FLOOR, f"hit@5 {result.hit_rate:.3f} < {HIT_FLOOR}\n{report}"


def test_two_character_queries_alone_are_served(index: FaqIndex, queries: list[LabelledQuery]) -> None:
    short = [q for q in queries if len(q.query) <= 2]
    result = evaluate(lambda q, k: [h.entry.id for h in index.search(q, k)], short, k=5)
    assert result.hit_rate == 1.0
    assert result.recall >= 0.85


def test_evaluation_counts_what_it_should() -> None:
    labelled = [LabelledQuery("a", frozenset({"1", "2"})), LabelledQuery("b", frozenset({"9"}))]
    result = evaluate(lambda q, k: ["1", "3"] if q == "a" else ["4"], labelled, k=5)
    assert result.recall == pytest.approx(0.25)  # (1/2 + 0/1) / 2
    assert result.hit_rate == 0.5
    with pytest.raises(ValueError, match="line 1"):
        parse_queries('{"query": "x"}\n')
