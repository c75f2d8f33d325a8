"""Pure: a FAQ entry and a search hit (what the index holds and returns, what the API shows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
MAX_KEYWORDS = 30  # keywords of one entry (an editor's draft, a keywords file)
MAX_FIELD_CHARS = 100  # a category, subcategory or keyword
# A hit whose best alternative covers less than this share of the query's words (by idf) is weak:
# the operator is told that no close answer was found.
WEAK_COVERAGE = 0.6


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    category: str
    subcategory: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    entry: FaqEntry
    score: float
    question_highlights: list[tuple[int, int]]  # [start, end) offsets into entry.question
    snippet: str  # an excerpt of the answer, newlines flattened
    snippet_highlights: list[tuple[int, int]]  # [start, end) offsets into snippet
    coverage: float = 1.0  # share of the query's words found in the entry (0..1); see WEAK_COVERAGE

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "question": self.entry.question,
            "score": round(self.score, 4),
            "category": self.entry.category,
            "subcategory": self.entry.subcategory,
            "snippet": self.snippet,
            "snippet_highlights": [list(span) for span in self.snippet_highlights],
            "question_highlights": [list(span) for span in self.question_highlights],
            "coverage": round(self.coverage, 3),
            "close": self.coverage >= WEAK_COVERAGE,  # False: the screen says nothing close was found
        }
