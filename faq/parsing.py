"""Pure parsing of FAQ files (the municipal template JSON, generic JSON and CSV; see faq/FORMAT.md).

Takes the file's bytes and name, returns the entries with the source and credit line; every
problem names the file, the entry (or CSV line) and the field. No I/O.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from faq.entries import MAX_KEYWORDS, FaqEntry, keyword_problem, split_keywords

KOSODATE_CREDIT = "出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）"
KOSODATE_SOURCE = "子育てオープンデータ協議会「汎用FAQ」（JSON化: takatama/faq-search-experiment）"
KOSODATE_NO_SUBCATEGORY = "64"
KOSODATE_NO_SERVICE = "null"


class FaqFormatError(ValueError):
    """The FAQ file cannot be imported; the message names the entry and the field."""


@dataclass(frozen=True)
class ParsedFaq:
    entries: list[FaqEntry]
    format: str  # "kosodate-json", "json", "csv"
    source: str
    credit: str


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_faq(data: bytes, filename: str, *, source: str | None = None, credit: str | None = None) -> ParsedFaq:
    """Parse a FAQ file (format chosen by extension: .json or .csv); see faq/FORMAT.md."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FaqFormatError(f"{filename}: not UTF-8 text (byte {exc.start})") from None
    lower = filename.lower()
    if lower.endswith(".json"):
        parsed = _parse_json(text, filename)
    elif lower.endswith(".csv"):
        parsed = ParsedFaq(_parse_csv(text, filename), "csv", filename, "")
    else:
        raise FaqFormatError(f"{filename}: unknown FAQ file type (expected .json or .csv)")
    if not parsed.entries:
        raise FaqFormatError(f"{filename}: no FAQ entries")
    _check_unique(parsed.entries, filename)
    return ParsedFaq(
        parsed.entries,
        parsed.format,
        source if source is not None else parsed.source,
        credit if credit is not None else parsed.credit,
    )


def _parse_json(text: str, filename: str) -> ParsedFaq:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaqFormatError(f"{filename}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    src, credit = filename, ""
    if isinstance(doc, dict):
        items = doc.get("entries")
        src = _opt_str(doc.get("source"), f"{filename}: source") or filename
        credit = _opt_str(doc.get("credit"), f"{filename}: credit") or ""
    else:
        items = doc
    if not isinstance(items, list):
        raise FaqFormatError(f"{filename}: expected a JSON list of entries (or an object with 'entries')")
    if items and isinstance(items[0], dict) and "faq_id" in items[0]:
        return ParsedFaq(
            [_kosodate_entry(item, i, filename) for i, item in enumerate(items)],
            "kosodate-json",
            KOSODATE_SOURCE,
            KOSODATE_CREDIT,
        )
    return ParsedFaq(
        [_generic_entry(item, f"{filename}: entry {i + 1}") for i, item in enumerate(items)], "json", src, credit
    )


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FaqFormatError(f"{where}: must be a string")
    return value


def _required_text(item: Mapping[str, Any], key: str, where: str) -> str:
    if key not in item:
        raise FaqFormatError(f"{where}: missing field {key!r}")
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FaqFormatError(f"{where}: field {key!r} must be text")
    text = str(value).strip()
    if not text:
        raise FaqFormatError(f"{where}: field {key!r} is empty")
    return text


def _kosodate_entry(item: Any, index: int, filename: str) -> FaqEntry:
    where = f"{filename}: entry {index + 1}"
    if not isinstance(item, dict):
        raise FaqFormatError(f"{where}: expected an object")
    where = f"{where} (faq_id {item.get('faq_id')!r})"
    sub = _required_text(item, "category2", where) if "category2" in item else KOSODATE_NO_SUBCATEGORY
    service = str(item.get("service_name") or KOSODATE_NO_SERVICE)
    keywords = () if service.strip() == KOSODATE_NO_SERVICE else _split_keywords(service)
    return FaqEntry(
        id=_required_text(item, "faq_id", where),
        question=_required_text(item, "question", where),
        answer=_required_text(item, "answer", where),
        category=_required_text(item, "category1", where),
        subcategory=None if sub == KOSODATE_NO_SUBCATEGORY else sub,
        keywords=keywords,
    )


def _split_keywords(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return split_keywords(str(value))


def _generic_entry(item: Any, where: str) -> FaqEntry:
    if not isinstance(item, dict):
        raise FaqFormatError(f"{where}: expected an object")
    unknown = set(item) - {"id", "question", "answer", "category", "subcategory", "keywords"}
    if unknown:
        raise FaqFormatError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    sub = item.get("subcategory")
    return FaqEntry(
        id=_required_text(item, "id", where),
        question=_required_text(item, "question", where),
        answer=_required_text(item, "answer", where),
        category=_required_text(item, "category", where),
        subcategory=str(sub).strip() or None if sub is not None else None,
        keywords=_split_keywords(item.get("keywords")),
    )


def _parse_csv(text: str, filename: str) -> list[FaqEntry]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [h for h in ("id", "question", "answer", "category") if h not in header]
    if missing:
        raise FaqFormatError(f"{filename}: CSV header lacks {', '.join(missing)} (line 1)")
    reader.fieldnames = header
    entries = []
    for row in reader:
        where = f"{filename}: line {reader.line_num}"
        if None in row:
            raise FaqFormatError(f"{where}: more fields than the header")
        item = {k: v for k, v in row.items() if v is not None}
        entries.append(_generic_entry(item, where))
    return entries


def add_keywords(parsed: ParsedFaq, data: bytes, filename: str) -> ParsedFaq:
    """The FAQ with an editors' keywords file added to its entries' keywords (faq/FORMAT.md, 3): JSON
    lines of {"id": ..., "keywords": [...]}, each id an entry of the FAQ. The whole file is checked
    first; a problem names the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FaqFormatError(f"{filename}: not UTF-8 text (byte {exc.start})") from None
    own = {entry.id: entry.keywords for entry in parsed.entries}
    added: dict[str, tuple[str, ...]] = {}
    # split at newlines only: JSON allows U+2028 and the like inside a string, str.splitlines() does not
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{filename}: line {number}"
        faq_id, keywords = _keywords_line(line, where)
        if faq_id not in own:
            raise FaqFormatError(f"{where}: no FAQ entry has id {faq_id!r}")
        if faq_id in added:
            raise FaqFormatError(f"{where}: id {faq_id!r} is given twice")
        added[faq_id] = tuple(dict.fromkeys([*own[faq_id], *keywords]))
        if len(added[faq_id]) > MAX_KEYWORDS:
            count = f"{len(added[faq_id])} keywords (at most {MAX_KEYWORDS})"
            raise FaqFormatError(f"{where}: entry {faq_id!r} would have {count}")
    entries = [replace(e, keywords=added[e.id]) if e.id in added else e for e in parsed.entries]
    return replace(parsed, entries=entries)


def _keywords_line(line: str, where: str) -> tuple[str, tuple[str, ...]]:
    try:
        item = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an over-long number, deep nesting
        raise FaqFormatError(f"{where}: not JSON ({getattr(exc, 'msg', type(exc).__name__)})") from None
    if not isinstance(item, dict) or set(item) != {"id", "keywords"}:
        raise FaqFormatError(f"{where}: expected an object with exactly the keys id and keywords")
    faq_id = item["id"]
    if not isinstance(faq_id, (str, int)) or isinstance(faq_id, bool) or not str(faq_id).strip():
        raise FaqFormatError(f"{where}: field 'id' must be a number or text")
    keywords = item["keywords"]
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise FaqFormatError(f"{where}: field 'keywords' must be a list of non-empty texts")
    trimmed = tuple(k.strip() for k in keywords)
    for keyword in trimmed:
        problem = keyword_problem(keyword)
        if problem:
            raise FaqFormatError(f"{where}: {problem}")
    return str(faq_id).strip(), trimmed


def _check_unique(entries: Sequence[FaqEntry], filename: str) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise FaqFormatError(f"{filename}: duplicate id {entry.id!r}")
        seen.add(entry.id)


