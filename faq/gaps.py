"""Pure: the FAQ editors' gap inbox (what the FAQ could not answer) and its report by category and week.

Three kinds of gap reach the editors:

- ``call``: a call an operator closed as "could not answer" (records' ``faq_gaps``: category and note);
- ``callback``: a callback a department closed with an answer (``answer_summary``): the answer the
  department gave is the raw material for a new entry;
- ``search``: a search the operator logged from the screen when nothing close was found.

The texts may hold personal data (what a caller said): they are shown to the editors only (the
reads of the first two are audited by records), and a draft made from them is checked for personal
data before it is saved (faq/authoring.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cti.core.clock import TOKYO
from faq.index import CATEGORY_LABELS

KIND_LABELS = {"call": "通話（回答できず）", "callback": "折り返しの回答", "search": "検索（近い回答なし）"}


@dataclass(frozen=True)
class Gap:
    kind: str
    id: int
    category: str | None  # IVR category code (call, search) or the department's name (callback)
    text: str
    created_at: datetime
    answered_by_entry: str | None = None
    question_hint: str = ""  # what the editor's draft starts from (the editor removes anything personal)
    answer_hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "kind_label": KIND_LABELS.get(self.kind, self.kind),
            "id": self.id,
            "category": self.category,
            "category_label": category_label(self.category),
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "answered": self.answered_by_entry is not None,
            "entry": self.answered_by_entry,
            "question_hint": self.question_hint,
            "answer_hint": self.answer_hint,
        }


def category_label(code: str | None) -> str:
    if code is None or not code:
        return "未分類"
    return CATEGORY_LABELS.get(code, code)


def _parse_time(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=TOKYO)


def merge_gaps(
    calls: Iterable[Mapping[str, Any]],
    callbacks: Iterable[Mapping[str, Any]],
    searches: Iterable[Mapping[str, Any]],
    answered: Mapping[tuple[str, int], Mapping[str, str]],
) -> list[Gap]:
    """One list, newest first, each marked with the entry that answered it (if any)."""
    gaps: list[Gap] = []
    for row in calls:
        gaps.append(Gap("call", int(row["id"]), row.get("category"), str(row.get("note") or ""),
                        _parse_time(row["created_at"]), question_hint=str(row.get("note") or "")))
    for row in callbacks:
        summary = str(row.get("answer_summary") or "").strip()
        if not summary:
            continue
        question = str(row.get("question") or "").strip()
        text = f"質問: {question}\n回答: {summary}" if question else f"回答: {summary}"
        gaps.append(Gap("callback", int(row["id"]), row.get("department_name") or row.get("department"), text,
                        _parse_time(row.get("closed_at") or row["collected_at"]),
                        question_hint=question, answer_hint=summary))
    for row in searches:
        gaps.append(Gap("search", int(row["id"]), row.get("category"), str(row["text"]),
                        _parse_time(row["created_at"]), question_hint=str(row["text"])))
    marked = [replace(g, answered_by_entry=(answered.get((g.kind, g.id)) or {}).get("entry")) for g in gaps]
    return sorted(marked, key=lambda g: (g.created_at, g.kind, g.id), reverse=True)


def week_of(at: datetime) -> str:
    """The Monday (Tokyo) of the week `at` falls in, as YYYY-MM-DD."""
    local = at.astimezone(TOKYO).date()
    return (local - timedelta(days=local.weekday())).isoformat()


def report(gaps: Iterable[Gap]) -> list[dict[str, Any]]:
    """Gaps counted by week (Monday, Tokyo) and category, with how many were answered; newest week first."""
    total: Counter[tuple[str, str]] = Counter()
    done: Counter[tuple[str, str]] = Counter()
    for gap in gaps:
        key = (week_of(gap.created_at), category_label(gap.category))
        total[key] += 1
        if gap.answered_by_entry is not None:
            done[key] += 1
    keys = sorted(total, key=lambda k: k[1])
    keys.sort(key=lambda k: total[k], reverse=True)
    keys.sort(key=lambda k: k[0], reverse=True)  # stable: newest week, then most gaps, then name
    return [{"week": week, "category": label, "total": total[(week, label)], "answered": done[(week, label)]}
            for week, label in keys]
