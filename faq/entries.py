"""Pure: a FAQ entry and a search hit (what the index holds and returns, what the API shows)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
MAX_KEYWORDS = 30  # keywords of one entry (an editor's draft, a keywords file)
MAX_FIELD_CHARS = 100  # a category, subcategory or keyword
# Keywords written in one text (a CSV cell, the editor's field: one per line) are separated by
# newlines or semicolons; 、 is part of a keyword (a caller's phrasing may hold one).
_KEYWORD_SEPARATOR = re.compile(r"[\n\r;；]")


def split_keywords(text: str) -> tuple[str, ...]:
    """The keywords of a text that lists them (see _KEYWORD_SEPARATOR), trimmed, empty ones dropped."""
    return tuple(k.strip() for k in _KEYWORD_SEPARATOR.split(text) if k.strip())


def keyword_problem(keyword: str) -> str | None:
    """Why `keyword` cannot be stored as one keyword (the store keeps them one per line), or None."""
    if len(keyword) > MAX_FIELD_CHARS:
        return f"a keyword is longer than {MAX_FIELD_CHARS} characters"
    if _KEYWORD_SEPARATOR.search(keyword) or any(unicodedata.category(ch) == "Cc" for ch in keyword):
        return "a keyword holds a line break, a semicolon or a control character"
    return None


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
