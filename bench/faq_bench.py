"""FAQ search: latency on 10,000 entries plus the ward's documents, success@5 and recall@5 on the
labelled operator queries (tuning sets and held-out set), index build, start-up and live-publish times.

The corpus is the real municipal FAQ (661 entries, 出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）)
with its editors' keywords (tests/fixtures/faq/kosodate_faq_keywords.jsonl), as the demo imports it,
grown to 10,000 by deterministic variation (city names for the ○○市 placeholders, reworded
question endings, prefixes). Queries are the labelled set (tests/fixtures/faq/queries.jsonl: 1-3
character ones such as ごみ, 税金, 印鑑 and operator phrases) plus their half-width/katakana forms.

The ward's documents (tests/fixtures/faq/ward-docs: web pages, Markdown, a PDF) are split at headings
and grown to 2,000 sections the same way; every timed search queries both indexes, as the operator
screen does (10 FAQ hits + 3 document hits).

Compared, in the same run, on the same data:
- cti: the BM25F in-memory index (faq/index.py) with Sudachi variants, readings and synonyms
  (faq/morph.py, faq/synonyms.py), results with highlights, snippets and coverage;
- cti without morphology (the plain bigram BM25F before issue 17), for quality and build time;
- baseline: a naive scan: normalise once, then for every query a substring count over every
  entry's question (x3) and answer, the way a LIKE '%q%' search ranks.

Start-up cost (import of the 10,000 entries into SQLite, reload and index build) is reported too.
Target: p99 <= 5 ms per search on 10,000 entries. Run: python -m bench.faq_bench [--quick]
[--without-held-out] (a tuning round runs without the held-out query sets: neither timed nor scored).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from bench.report import Figure, table
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from cti.gateway import Database
from faq.authoring import Draft
from faq.documents import DocSection
from faq.entries import FaqEntry
from faq.evaluation import LabelledQuery, evaluate, parse_queries
from faq.folder import read_folder
from faq.index import FaqIndex
from faq.parsing import add_keywords, parse_faq
from faq.service import FaqService
from faq.store import COMPONENT, MIGRATIONS, import_documents, import_faq
from faq.textnorm import normalize

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "faq"
TARGET_P99_MS = 5.0
TARGET_RECALL = 0.90
TARGET_SUCCESS = 0.97
TARGET_HOLDOUT_SUCCESS = 0.95
# The query sets (tests/fixtures/faq, tests/unit/test_faq_recall.py says how each was written).
TUNING_SETS = {
    "queries-tuning2.jsonl": "second tuning round",
    "queries-tuning3.jsonl": "third tuning round",
    "queries-tuning4.jsonl": "fourth tuning round, written blind",
    "queries-tuning5.jsonl": "phone style, written blind, misses read in round 6",
}
HELD_OUT_SETS = {
    "queries-holdout.jsonl": "written by the rules' authors, never tuned on",
    "queries-holdout2.jsonl": "written blind, no longer clean",
    "queries-holdout3.jsonl": "written blind after round 3",
    "queries-holdout4.jsonl": "written blind after round 3",
    "queries-holdout5.jsonl": "written blind during round 4",
    "queries-holdout6.jsonl": "written blind after round 4",
    "queries-holdout7.jsonl": "written blind during round 5",
    "queries-holdout8.jsonl": "written blind before round 6",
    "queries-holdout9.jsonl": "written blind in phone style during round 6",
}
BLIND_SETS = tuple(f"queries-holdout{n}.jsonl" for n in range(3, 10))

ENTRIES = 10_000
SECTIONS = 2_000
BENCH = "faq"

CITIES = ["渋谷区", "世田谷区", "練馬区", "横浜市", "川崎市", "さいたま市", "千葉市", "八王子市", "町田市", "府中市"]
ENDINGS = [
    ("を教えてください。", "について知りたいです。"),
    ("を教えてください。", "はどうすればいいですか？"),
    ("について教えてください。", "の案内はありますか？"),
    ("ですか？", "でしょうか？"),
    ("ますか？", "ますでしょうか？"),
]
PREFIXES = ["", "", "至急：", "【よくある質問】", "電話での問い合わせ："]


def _load(name: str) -> list[LabelledQuery]:
    return parse_queries((FIXTURES / name).read_text(encoding="utf-8"))


def grow(base: Sequence[FaqEntry], size: int, seed: int = 7) -> list[FaqEntry]:
    """The real entries, then reworded copies until `size` (ids "<base id>~<n>")."""
    rng = random.Random(seed)
    grown = list(base)
    n = 0
    while len(grown) < size:
        n += 1
        for entry in base:
            if len(grown) >= size:
                break
            city = rng.choice(CITIES)
            question = entry.question.replace("○○市", city)
            old, new = rng.choice(ENDINGS)
            question = rng.choice(PREFIXES) + question.replace(old, new)
            answer = entry.answer.replace("○○市", city).replace(
                "（自治体HP内関連ページのURL）", f"https://www.city.example/{n}/{entry.id}"
            )
            grown.append(
                FaqEntry(f"{entry.id}~{n}", question, answer, entry.category, entry.subcategory, entry.keywords)
            )
    return grown


def grow_documents(base: Sequence[DocSection], size: int) -> list[DocSection]:
    """The sample sections, then copies with another ward's name until `size`."""
    grown = list(base)
    n = 0
    while len(grown) < size:
        n += 1
        for section in base:
            if len(grown) >= size:
                break
            city = CITIES[n % len(CITIES)]
            grown.append(
                DocSection(
                    f"{section.id}~{n}",
                    section.source,
                    section.source_label,
                    section.path,
                    section.title.replace("さくら区", city),
                    section.body.replace("区", city[-1]),
                    section.url,
                )
            )
    return grown


def base_id(faq_id: str) -> str:
    return faq_id.split("~", 1)[0]


class NaiveScan:
    """Baseline: substring counting over pre-normalised text, like LIKE '%q%' with a score."""

    def __init__(self, entries: Sequence[FaqEntry]) -> None:
        self.rows = [(e.id, normalize(e.question), normalize(e.answer)) for e in entries]

    def search(self, query: str, limit: int) -> list[str]:
        parts = [normalize(p) for p in query.split() if p.strip()]
        scored: list[tuple[float, int, str]] = []
        for order, (faq_id, question, answer) in enumerate(self.rows):
            score = sum(3 * question.count(p) + answer.count(p) for p in parts)
            if score:
                scored.append((-score, order, faq_id))
        scored.sort()
        return [faq_id for _s, _o, faq_id in scored[:limit]]


def variants(queries: Sequence[LabelledQuery]) -> list[str]:
    """The labelled queries plus katakana and half-width forms of the kana ones."""
    out = [q.query for q in queries]
    hira_to_kata = {chr(c): chr(c + 0x60) for c in range(0x3041, 0x3097)}
    for q in queries:
        kata = "".join(hira_to_kata.get(ch, ch) for ch in q.query)
        if kata != q.query:
            out.append(kata)
    return out


def timings(search: Callable[[str], object], queries: Sequence[str], rounds: int) -> tuple[list[float], list[float]]:
    """Per-search wall time and CPU time of this thread, in ms. On a shared machine the wall time
    includes waiting for a CPU; the CPU time is the work itself."""
    wall, cpu = [], []
    for _ in range(rounds):
        for query in queries:
            started, started_cpu = time.perf_counter(), time.thread_time()
            search(query)
            cpu.append((time.thread_time() - started_cpu) * 1000.0)
            wall.append((time.perf_counter() - started) * 1000.0)
    return wall, cpu


def p(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def collapse(ids: Sequence[str], k: int) -> list[str]:
    """Variant ids back to their base entry, first occurrence kept, top k."""
    return list(dict.fromkeys(base_id(i) for i in ids))[:k]


async def _startup(entries: list[FaqEntry], sections: list[DocSection]) -> tuple[float, float, float]:
    """(import into SQLite, start = load + build both indexes, publish one edit until it is searchable)."""
    from faq.documents import SourceInfo
    from faq.parsing import ParsedFaq

    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3", {COMPONENT: MIGRATIONS})
        try:
            now = datetime.now(TOKYO)
            started = time.perf_counter()
            await db.write(lambda c: import_faq(c, ParsedFaq(entries, "json", "bench", ""), now))
            source = SourceInfo("website", "bench", "")
            await db.write(lambda c: import_documents(c, source, sections, now))
            imported = time.perf_counter() - started
            started = time.perf_counter()
            service = FaqService(db, lambda: datetime.now(TOKYO))
            await service.load()
            loaded = time.perf_counter() - started
            assert service.size == len(entries) and service.documents == len(sections)
            editor = Principal("bench", Role.ADMIN, None, "127.0.0.1")
            draft = Draft("ベンチマーク用の新しい質問ですか？", "ベンチマーク用の回答です。", "その他")
            saved = await service.save_draft(editor, None, draft)
            started = time.perf_counter()
            await service.publish(editor, saved["id"], saved["version"])
            published = time.perf_counter() - started
            assert service.search("ベンチマーク用", 1)[0].entry.id == saved["id"]
        finally:
            await db.close()
    return imported, loaded, published


async def run(quick: bool, held_out: bool = True) -> list[Figure]:
    """``held_out=False`` (--without-held-out) neither times nor evaluates the held-out sets: for a
    tuning round, whose engineer must not see them."""
    corpus = FIXTURES / "kosodate_opendata_faq_corpus.json"
    keywords = FIXTURES / "kosodate_faq_keywords.jsonl"  # the editors' keywords, as the demo imports them
    real = add_keywords(parse_faq(corpus.read_bytes(), corpus.name), keywords.read_bytes(), keywords.name).entries
    labelled = _load("queries.jsonl")
    tuning = {name: _load(name) for name in TUNING_SETS}
    holdout = {name: _load(name) for name in HELD_OUT_SETS} if held_out else {}
    big = grow(real, ENTRIES)
    sections = grow_documents([s for _i, found in read_folder(FIXTURES / "ward-docs") for s in found], SECTIONS)
    figures: list[Figure] = []

    started = time.perf_counter()
    index = FaqIndex(big)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    docs = FaqIndex([s.as_entry() for s in sections])
    docs_build_s = time.perf_counter() - started
    started = time.perf_counter()
    FaqIndex(big, morphology=False)
    plain_build_s = time.perf_counter() - started
    naive = NaiveScan(big)
    queries = variants(labelled) + [q.query for qs in [*tuning.values(), *holdout.values()] for q in qs]
    rounds = 1 if quick else 10
    naive_queries = queries[:30] if quick else queries

    def ours(q: str) -> object:
        return index.search(q, 10), docs.search(q, 3)

    def theirs(q: str) -> object:
        return naive.search(q, 10)

    ours(queries[0])  # warm
    fast, fast_cpu = timings(ours, queries, rounds)
    slow, slow_cpu = timings(theirs, naive_queries, 1)
    short = [q for q in queries if len(q) <= 2]
    fast_short, _short_cpu = timings(ours, short, rounds)
    best: dict[str, float] = {}
    for index_in_round, sample in enumerate(fast):
        query = queries[index_in_round % len(queries)]
        best[query] = min(best.get(query, sample), sample)
    load = os.getloadavg()[0]
    n = (
        f"{len(big):,} entries + {len(sections):,} document sections, {len(fast):,} searches, "
        f"load avg {load:.1f} on {os.cpu_count()} cpus"
    )
    figures += [
        Figure(BENCH, "search p50 (cti)", statistics.median(fast), "ms", None, note=n),
        Figure(BENCH, "search p99 (cti)", p(fast, 0.99), "ms", TARGET_P99_MS, note=n),
        Figure(
            BENCH,
            "search p99, 1-2 char queries (cti)",
            p(fast_short, 0.99),
            "ms",
            TARGET_P99_MS,
            note=f"{len(fast_short):,} searches",
        ),
        Figure(BENCH, "search CPU time p99 (cti)", p(fast_cpu, 0.99), "ms", TARGET_P99_MS, note="thread CPU time"),
        Figure(BENCH, "search CPU time p99 (naive scan)", p(slow_cpu, 0.99), "ms", None, note="thread CPU time"),
        Figure(
            BENCH, "search p50 (naive scan baseline)", statistics.median(slow), "ms", None, note=f"{len(slow)} searches"
        ),
        Figure(BENCH, "search p99 (naive scan baseline)", p(slow, 0.99), "ms", None, note=f"{len(slow)} searches"),
        Figure(BENCH, "index build (cti)", build_s, "s", None, note=f"{len(big):,} entries, with Sudachi"),
        Figure(BENCH, "index build, no morphology", plain_build_s, "s", None, note=f"{len(big):,} entries"),
        Figure(BENCH, "document index build (cti)", docs_build_s, "s", None, note=f"{len(sections):,} sections"),
    ]

    if rounds > 1:
        figures.append(
            Figure(
                BENCH,
                "slowest query, best of rounds (cti)",
                max(best.values()),
                "ms",
                TARGET_P99_MS,
                note=f"each query's fastest of {rounds} runs: the work without scheduling noise",
            )
        )

    real_index = FaqIndex(real)
    plain_index = FaqIndex(real, morphology=False)
    real_naive = NaiveScan(real)

    def ranked(q: str, k: int) -> list[str]:
        return [h.entry.id for h in real_index.search(q, k)]

    ev_ours = evaluate(ranked, labelled)
    ev_plain = evaluate(lambda q, k: [h.entry.id for h in plain_index.search(q, k)], labelled)
    ev_naive = evaluate(lambda q, k: real_naive.search(q, k), labelled)
    ev_big = evaluate(lambda q, k: collapse([h.entry.id for h in index.search(q, 50)], k), labelled)
    ev_big_naive = evaluate(lambda q, k: collapse(naive.search(q, 200), k), labelled) if not quick else None
    note = f"{len(labelled)} labelled queries"
    figures += [
        Figure(BENCH, "success@5, real FAQ (cti)", ev_ours.hit_rate, "", TARGET_SUCCESS, True, note),
        Figure(BENCH, "success@5, real FAQ (no morphology)", ev_plain.hit_rate, "", None, True, note),
        Figure(BENCH, "recall@5, real FAQ (cti)", ev_ours.recall, "", TARGET_RECALL, True, note),
        Figure(BENCH, "recall@5, real FAQ (naive scan)", ev_naive.recall, "", None, True, note),
        Figure(BENCH, "hit@5, real FAQ (cti)", ev_ours.hit_rate, "", None, True, note),
        Figure(BENCH, "hit@5, real FAQ (naive scan)", ev_naive.hit_rate, "", None, True, note),
        Figure(BENCH, "recall@5, 10k grown FAQ (cti)", ev_big.recall, "", None, True, note + ", variants -> base id"),
    ]
    for name, queries_of_set in tuning.items():
        result = evaluate(ranked, queries_of_set)
        set_note = f"{len(queries_of_set)} phrasings, {TUNING_SETS[name]}"
        figures.append(Figure(BENCH, f"success@5, {name} (cti)", result.hit_rate, "", TARGET_SUCCESS, True, set_note))
    if holdout:
        blind = [q for name, qs in holdout.items() if name in BLIND_SETS for q in qs]
        for name, queries_of_set in [*holdout.items(), ("blind held-out, together", blind)]:
            result = evaluate(ranked, queries_of_set)
            # The held-out target applies to text the project never tuned on: the blind sets.
            target = TARGET_HOLDOUT_SUCCESS if name == "blind held-out, together" else None
            set_note = f"{len(queries_of_set)} phrasings, {HELD_OUT_SETS.get(name, 'the blind sets together')}"
            figures += [
                Figure(BENCH, f"success@5, {name} (cti)", result.hit_rate, "", target, True, set_note),
                Figure(BENCH, f"recall@5, {name} (cti)", result.recall, "", None, True, set_note),
            ]
    if ev_big_naive is not None:
        figures.append(
            Figure(
                BENCH,
                "recall@5, 10k grown FAQ (naive scan)",
                ev_big_naive.recall,
                "",
                None,
                True,
                note + ", variants -> base id",
            )
        )
    if not quick:
        tracemalloc.start()
        sized = FaqIndex(big)
        memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        del sized
        figures.append(Figure(BENCH, "index memory (cti)", memory_mb, "MB", None, note="tracemalloc, 10,000 entries"))
        imported, loaded, published = await _startup(big, sections)
        figures += [
            Figure(BENCH, "import 10k + 2k sections into SQLite", imported, "s", None),
            Figure(BENCH, "start: load from SQLite + build both indexes", loaded, "s", None),
            Figure(BENCH, "publish one edit until searchable", published, "s", None, note="rebuild with cache"),
        ]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faq_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument(
        "--without-held-out",
        action="store_true",
        help="neither time nor evaluate the held-out query sets (a tuning round must not see them)",
    )
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.quick, not args.without_held_out))
    print(table(figures))
    print("出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）")
    return 0 if all(f.verdict != "MISSED" for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
