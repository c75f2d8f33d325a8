"""FAQ suggestions for a screen pop: entries of the IVR category's FAQ categories, ranked by the
caller's recent topics and then the category's typical ones (search through faq/index.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from faq.categories import DEFAULT_CATEGORY_MAP, DEFAULT_CATEGORY_TOPICS
from faq.entries import MAX_LIMIT, MAX_QUERY_CHARS, FaqEntry
from faq.index import FaqIndex


def suggest(
    index: FaqIndex,
    category_code: str | None,
    recent_topics: Sequence[str],
    limit: int,
    category_map: Mapping[str, Sequence[str]] | None = None,
) -> list[FaqEntry]:
    """FAQ entries for an incoming call: entries of the IVR category's FAQ categories, ranked by
    the caller's recent topics (earlier contacts) and then by the category's typical topics."""
    if limit <= 0:
        return []
    mapping: dict[str, Sequence[str]] = {**DEFAULT_CATEGORY_MAP, **(category_map or {})}  # configured codes win
    code = category_code if category_code is not None and category_code in mapping else "other"
    categories = set(mapping.get(code, ()))
    allowed = (lambda e: e.category in categories) if categories else None
    chosen: list[FaqEntry] = []
    seen: set[str] = set()
    queries = [t for t in recent_topics if t and t.strip()][:5]
    queries.append(DEFAULT_CATEGORY_TOPICS.get(code, ""))
    for query in queries:
        if not query.strip():
            continue
        try:
            hits = index.search(query[:MAX_QUERY_CHARS], min(MAX_LIMIT, limit * 2), allowed=allowed)
        except ValueError:
            continue
        for hit in hits:
            if hit.entry.id not in seen:
                seen.add(hit.entry.id)
                chosen.append(hit.entry)
    if len(chosen) < limit:
        for entry in index.entries():
            if entry.id not in seen and (allowed is None or allowed(entry)):
                seen.add(entry.id)
                chosen.append(entry)
                if len(chosen) >= limit:
                    break
    return chosen[:limit]
