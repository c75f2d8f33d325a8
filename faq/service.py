"""The FAQ as the rest of the server sees it: search (FAQ and the ward's documents), get, suggest,
import, and the editors' changes, which are live in search within seconds (no restart).

The database (through the gateway, cti/gateway.py) is the record; the search indexes are rebuilt
from it in memory after each change, in a worker thread, while the old index keeps serving; the new
one replaces it in one assignment. Entries already analysed are taken from a cache, so a rebuild
after one published change costs the corpus statistics, not the morphological analysis again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cti.core.clock import Clock
from cti.core.logs import log_event
from cti.core.principal import Principal
from faq import authoring, morph, store
from faq.analysis import Analysed
from faq.documents import DocSection, SourceInfo
from faq.entries import WEAK_COVERAGE, FaqEntry, SearchHit
from faq.folder import read_folder
from faq.index import FaqIndex
from faq.memory import trim_heap
from faq.parsing import ParsedFaq
from faq.store import ImportCounts, ImportInfo, Progress
from faq.suggestions import suggest
from faq.synonyms import DEFAULT_RULES, SynonymRule, parse_rule, synonym_table

logger = logging.getLogger("cti.faq")

T = TypeVar("T")
SEARCH_GAP_DAYS = 90  # logged searches are kept this long (they may hold what a caller said)

# (who, action, record_type, record_id, outcome, detail) -> the hash-chained audit (records/store.py)
Audit = Callable[[Principal, str, str, str | int | None, str, Mapping[str, Any] | None], Awaitable[None]]


class Gateway(Protocol):
    async def read(self, fn: Callable[[Any], T]) -> T: ...
    async def write(self, fn: Callable[[Any], T]) -> T: ...


@dataclass(frozen=True)
class DocumentHit:
    section: DocSection
    hit: SearchHit

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.section.id,
            "kind": "document",
            "title": self.section.title,
            "question": self.section.title,  # the shape of a FAQ hit, so a screen lists both alike
            "question_highlights": [list(span) for span in self.hit.question_highlights],
            "close": self.hit.coverage >= WEAK_COVERAGE,
            "source": self.section.source_label,
            "url": self.section.url,
            "score": round(self.hit.score, 4),
            "snippet": self.hit.snippet,
            "snippet_highlights": [list(span) for span in self.hit.snippet_highlights],
            "title_highlights": [list(span) for span in self.hit.question_highlights],
            "coverage": round(self.hit.coverage, 3),
        }


def is_weak(hits: Sequence[SearchHit]) -> bool:
    """No hit, or the best one covers too little of the query: say so on the screen."""
    return not hits or max(h.coverage for h in hits) < WEAK_COVERAGE


class FaqService:
    def __init__(
        self,
        db: Gateway,
        clock: Clock,
        category_map: Mapping[str, Sequence[str]] | None = None,
        audit: Audit | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._category_map = category_map
        self._audit = audit
        self._index = FaqIndex([])
        self._docs_index = FaqIndex([])
        self._sections: dict[str, DocSection] = {}
        self._info: ImportInfo | None = None
        self._rules: list[SynonymRule] = list(DEFAULT_RULES)
        self._cache: dict[FaqEntry, Analysed] = {}
        self._reload_lock = asyncio.Lock()

    # --- loading ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the FAQ, documents and synonym rules and build the indexes (old ones serve meanwhile)."""
        async with self._reload_lock:
            entries, sections, editor_rules, info = await self._db.read(_snapshot)
            rules = [*DEFAULT_RULES, *editor_rules]
            table = synonym_table(rules)
            cache = self._cache

            old_index, old_docs = self._index, self._docs_index
            doc_entries = [s.as_entry() for s in sections]

            def build() -> tuple[FaqIndex, FaqIndex]:
                # An index whose entries did not change is kept (synonyms act at query time).
                if old_index.entries() == entries:
                    index = old_index.with_synonyms(table)
                else:
                    index = FaqIndex(entries, table, cache=cache)
                if old_docs.entries() == doc_entries:
                    docs = old_docs.with_synonyms(table)
                else:
                    docs = FaqIndex(doc_entries, table, cache=cache)
                live = set(entries) | set(doc_entries)
                for stale in [k for k in cache if k not in live]:
                    del cache[stale]
                # What only the build needed goes back (faq/memory.py): ~150 MiB of dictionary pages
                # after the municipal FAQ's 661 entries.
                morph.release_pages()
                trim_heap()
                return index, docs

            # Building is CPU work: keep the loop responsive.
            self._index, self._docs_index = await asyncio.to_thread(build)
            self._sections = {s.id: s for s in sections}
            self._rules = rules
            self._info = info
        log_event(logger, "faq_loaded", entries=len(entries), documents=len(sections), synonyms=len(editor_rules))

    # --- reading ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self._index)

    @property
    def documents(self) -> int:
        return len(self._docs_index)

    @property
    def credit(self) -> str:
        return self._info.credit if self._info else ""

    @property
    def source(self) -> str:
        return self._info.source if self._info else ""

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        return self._index.search(query, limit)

    def search_documents(self, query: str, limit: int = 5) -> list[DocumentHit]:
        return [DocumentHit(self._sections[h.entry.id], h) for h in self._docs_index.search(query, limit)]

    def operator_results(self, query: str, limit: int, documents: int = 3) -> list[dict[str, Any]]:
        """What the operator screen lists: FAQ hits, then the best document sections (``kind``
        "document", with source and link); each with ``close`` (False: nothing close was found)."""
        return [
            *(hit.as_dict() for hit in self.search(query, limit)),
            *(doc.as_dict() for doc in self.search_documents(query, documents)),
        ]

    def get(self, faq_id: str) -> FaqEntry | None:
        return self._index.get(faq_id)

    def get_document(self, section_id: str) -> DocSection | None:
        return self._sections.get(section_id)

    def entries(self) -> list[FaqEntry]:
        return self._index.entries()

    def export_document(self) -> dict[str, Any]:
        """The live FAQ as the generic JSON file (`cti faq export`, the editor's export): importing
        it again gives the same FAQ."""
        return {
            "source": self.source or "FAQ",
            "credit": self.credit,
            "entries": [
                {"id": e.id, "question": e.question, "answer": e.answer, "category": e.category,
                 "subcategory": e.subcategory, "keywords": list(e.keywords)}
                for e in self.entries()
            ],
        }

    def suggest(self, category_code: str | None, recent_topics: Sequence[str], limit: int) -> list[FaqEntry]:
        return suggest(self._index, category_code, recent_topics, limit, self._category_map)

    # --- imports ------------------------------------------------------------------------------

    async def import_parsed(self, parsed: ParsedFaq, progress: Progress | None = None) -> ImportCounts:
        now = self._clock()
        counts = await self._db.write(lambda conn: store.import_faq(conn, parsed, now, progress))
        log_event(logger, "faq_imported", **counts.as_dict())
        await self.load()
        return counts

    async def import_documents(
        self, source: SourceInfo, sections: Sequence[DocSection], *, reload: bool = True
    ) -> ImportCounts:
        now = self._clock()
        counts = await self._db.write(lambda conn: store.import_documents(conn, source, sections, now))
        log_event(logger, "faq_documents_imported", source=source.key, **counts.as_dict())
        if reload:
            await self.load()
        return counts

    async def import_folder(self, folder: Path) -> list[tuple[SourceInfo, ImportCounts]]:
        """Import every source of a folder (faq/folder.py), then reload once; raises DocumentError."""
        sources = await asyncio.to_thread(read_folder, folder)
        done = [(info, await self.import_documents(info, sections, reload=False)) for info, sections in sources]
        await self.load()
        return done

    # --- authoring ----------------------------------------------------------------------------

    async def _audited(self, who: Principal, action: str, kind: str, ref: str | int | None, **detail: Any) -> None:
        if self._audit is not None:
            await self._audit(who, action, kind, ref, "ok", detail or None)

    async def save_draft(
        self, who: Principal, source_id: str | None, draft: authoring.Draft, gap: tuple[str, int] | None = None
    ) -> dict[str, Any]:
        now = self._clock()
        saved = await self._db.write(
            lambda conn: authoring.save_draft(conn, source_id, draft, who.user_id, now, gap)
        )
        await self._audited(who, "draft", "faq_entry", saved["id"], version=saved["version"])
        return saved

    async def publish(self, who: Principal, source_id: str, version: int) -> FaqEntry:
        now = self._clock()
        entry = await self._db.write(lambda conn: authoring.publish(conn, source_id, version, who.user_id, now))
        await self._audited(who, "publish", "faq_entry", source_id, version=version)
        await self.load()
        return entry

    async def retire(self, who: Principal, source_id: str) -> dict[str, Any]:
        now = self._clock()
        retired = await self._db.write(lambda conn: authoring.retire(conn, source_id, who.user_id, now))
        await self._audited(who, "retire", "faq_entry", source_id, version=retired["version"])
        await self.load()
        return retired

    async def history(self, source_id: str) -> list[dict[str, Any]]:
        return await self._db.read(lambda conn: authoring.history(conn, source_id))

    async def drafts(self) -> list[dict[str, Any]]:
        return await self._db.read(authoring.pending_drafts)

    async def synonyms(self) -> dict[str, Any]:
        editor = await self._db.read(authoring.list_synonyms)
        return {"editor": editor, "shipped": [rule.text() for rule in DEFAULT_RULES]}

    async def add_synonym(self, who: Principal, text: str) -> dict[str, Any]:
        now = self._clock()
        added = await self._db.write(lambda conn: authoring.add_synonym(conn, text, who.user_id, now))
        await self._audited(who, "create", "faq_synonym", added["id"])
        await self.load()
        return added

    async def delete_synonym(self, who: Principal, synonym_id: int) -> None:
        await self._db.write(lambda conn: authoring.delete_synonym(conn, synonym_id))
        await self._audited(who, "delete", "faq_synonym", synonym_id)
        await self.load()

    # --- gaps ---------------------------------------------------------------------------------

    async def log_search_gap(self, who: Principal, query: str, ivr_category: str | None) -> dict[str, Any]:
        now = self._clock()
        gap = await self._db.write(
            lambda conn: authoring.log_search_gap(conn, query, ivr_category, who.user_id, now)
        )
        await self._audited(who, "create", "faq_search_gap", gap["id"])
        return gap

    async def search_gaps(self) -> list[dict[str, Any]]:
        return await self._db.read(authoring.search_gaps)

    async def gap_answers(self) -> dict[tuple[str, int], dict[str, str]]:
        return await self._db.read(authoring.gap_answers)

    async def purge_old_search_gaps(self) -> int:
        before = self._clock() - timedelta(days=SEARCH_GAP_DAYS)
        return await self._db.write(lambda conn: authoring.purge_search_gaps(conn, before))


def _snapshot(conn: Any) -> tuple[list[FaqEntry], list[DocSection], list[SynonymRule], ImportInfo | None]:
    rules = []
    for row in authoring.list_synonyms(conn):
        try:
            rules.append(parse_rule(row["rule"]))
        except ValueError:  # stored rules were checked when saved; a rule that no longer parses is skipped
            continue
    return store.load_entries(conn), store.load_documents(conn), rules, store.latest_import(conn)
