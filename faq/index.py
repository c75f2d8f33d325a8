"""Pure FAQ core: entries, an in-memory inverted index, ranking, coverage, snippets, suggestions.

No I/O here: the service (faq/service.py) reads the database and hands the entries to
:class:`FaqIndex`; file parsing is faq/parsing.py.

Ranking is BM25F over character bigrams (see faq/textnorm.py): each field has a weight
(question 3, category/keywords 1.5, answer 1) and its own length normalisation; per-posting weights
are precomputed when the index is built (numpy arrays), so a query is one np.bincount over the
postings of its tokens plus a partial sort. Beside the written text each field carries the bigrams
of Sudachi's normalised forms of its words (申込 -> 申し込み) and, for questions and keywords, of
its reading in a separate token space (faq/morph.py).

A query word is searched in all its forms (``Alternative``): as typed, its normalised form, the
kanji word with its reading when typed in hiragana (いんかん -> 印鑑), and its synonyms
(faq/synonyms.py). On the query side, bigrams across a script change (の出, 当は) and hiragana-only
bigrams next to kanji words weigh less, tokens found in more than 40% of the entries are skipped,
and each token reads at most its IMPACT_CAP strongest postings (postings are sorted by weight),
which bounds the work per query on a large FAQ. A query word (in any form) found contiguously in
the question gets a bonus, which puts exact phrase matches first. Each hit's ``coverage`` says how
much of the query it contains (WEAK_COVERAGE: the screen says nothing close was found).
"""

from __future__ import annotations

import copy
import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faq import morph
from faq.query_words import (
    READ,
    UNI,
    Alternative,
    coverage,
    hiragana_only,
    katakana_grams,
    surface_tokens,
    token_weight,
)
from faq.snippets import map_spans, match_spans, snippet
from faq.synonyms import DEFAULT_SYNONYMS
from faq.textnorm import grams, normalize, normalize_with_map, run_grams, runs, unigrams

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50

# The IVR category codes and their Japanese labels (shared with the screen-pop composer).
CATEGORY_LABELS: dict[str, str] = {
    "koseki": "戸籍・住民票",
    "zei": "税",
    "hoken": "保険・年金",
    "gomi": "ごみ・リサイクル",
    "kosodate": "子育て",
    "other": "その他",
}

# IVR category code -> the FAQ's category values (category1 of the municipal FAQ) it covers.
DEFAULT_CATEGORY_MAP: dict[str, list[str]] = {
    "koseki": ["住民票・戸籍・印鑑証明", "暮らしに役立つ情報"],
    "zei": ["税金"],
    "hoken": ["保険・年金", "健康・医療", "健診・予防接種"],
    "gomi": ["ごみ・リサイクル", "環境衛生"],
    "kosodate": [
        "子どもの手当・助成",
        "保育",
        "妊娠・出産",
        "子育て・子ども家庭支援",
        "健診・予防接種",
        "学校・教育",
    ],
    "other": ["施設", "防災・防犯", "暮らしに関する相談", "区の紹介", "暮らしに役立つ情報"],
}

# Default topic words per IVR code: rank a category's entries when the caller has no recent topics.
DEFAULT_CATEGORY_TOPICS: dict[str, str] = {
    "koseki": "住民票 戸籍 印鑑登録 転入 転出 マイナンバー",
    "zei": "住民税 納税証明書 課税証明書 申告",
    "hoken": "国民健康保険 保険証 年金",
    "gomi": "ごみの出し方 粗大ごみ 分別 資源",
    "kosodate": "児童手当 保育園 入園 母子手帳 医療証",
    "other": "市役所 開庁時間 場所 電話番号",
}


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


# ---------------------------------------------------------------------------------------------
# Index and ranking

K1 = 1.2
# field name -> (weight, b)
FIELDS: dict[str, tuple[float, float]] = {"question": (3.0, 0.5), "meta": (1.5, 0.3), "answer": (1.0, 0.75)}
PHRASE_BONUS = 0.5  # score multiplier per query part found whole in the question
COMMON_DF_RATIO = 0.4  # query tokens in more than this share of entries are skipped (if others remain)
IMPACT_CAP = 1000  # strongest postings read per query token (see FaqIndex.search)
# A hit whose best alternative covers less than this share of the query's words (by idf) is weak:
# the operator is told that no close answer was found.
WEAK_COVERAGE = 0.6
READING_MIN_CHARS = 3  # a hiragana word this long is also looked up as a reading (いつ, どこ are not)


def _meta_text(entry: FaqEntry) -> str:
    return " ".join([entry.category, entry.subcategory or "", *entry.keywords])


@dataclass
class _Doc:
    entry: FaqEntry
    q_norm: str
    a_norm: str
    a_map: list[int] | None  # None: identity
    q_map: list[int] | None
    q_extra: str  # the question's variants and reading (for the phrase bonus)


@dataclass(frozen=True)
class _Postings:
    """One token's postings, impact-ordered: highest weight first (ties in entry order)."""

    docs: NDArray[np.int32]
    weights: NDArray[np.float64]

    @staticmethod
    def build(docs: list[int], weights: list[float]) -> _Postings:
        w = np.asarray(weights, dtype=np.float64)
        order = np.argsort(-w, kind="stable")
        return _Postings(np.asarray(docs, dtype=np.int32)[order], w[order])


@dataclass(frozen=True)
class _Query:
    groups: list[list[Alternative]]  # one group per query word
    terms: list[tuple[str, _Postings, float]]  # (token, postings, weighted idf), all groups merged
    weights: dict[str, float]  # token -> weight for the coverage: 0 if pruned as common, top idf if unknown


@dataclass(frozen=True)
class Analysed:
    """What the index keeps of one entry before the corpus statistics (cacheable across rebuilds)."""

    doc: _Doc
    tfs: list[Counter[str]]  # question, meta, answer token counts
    lens: list[int]
    unis: dict[str, float]
    words: list[tuple[str, str]]  # (reading, written) nouns, for the reading lexicon


def _analyse(entry: FaqEntry, morphology: bool) -> Analysed:
    q_norm, q_map = normalize_with_map(entry.question)
    a_norm, a_map = normalize_with_map(entry.answer)
    meta = _meta_text(entry)
    m_norm = normalize(meta)
    tfs: list[Counter[str]] = []
    lens: list[int] = []
    unis: dict[str, float] = {}
    words: list[tuple[str, str]] = []
    q_extra = ""
    sources = ((entry.question, q_norm, True), (meta, m_norm, True), (entry.answer, a_norm, False))
    for (weight, _b), (text, norm, with_reading) in zip(FIELDS.values(), sources, strict=True):
        tokens = grams(norm)
        if morphology and text.strip():
            analysis = morph.analyse(text)
            if analysis.variants:
                tokens += grams(" ".join(analysis.variants))
            if with_reading:
                tokens += [READ + g for g in grams(analysis.reading)]
            if text is entry.question:
                q_extra = " ".join([*analysis.variants, analysis.reading])
            words.extend(analysis.words)
        tfs.append(Counter(tokens))
        lens.append(max(len(tokens), 1))
        for ch, count in Counter(unigrams(norm)).items():
            unis[UNI + ch] = unis.get(UNI + ch, 0.0) + weight * count
    return Analysed(_Doc(entry, q_norm, a_norm, a_map, q_map, q_extra), tfs, lens, unis, words)


class FaqIndex:
    """An immutable in-memory index over a set of FAQ entries.

    ``morphology`` (default on) adds Sudachi's normalised forms and readings (faq/morph.py) to both
    the entries and the queries; off, the index is the plain bigram BM25F (kept for measurements).
    """

    def __init__(
        self,
        entries: Iterable[FaqEntry],
        synonyms: Mapping[str, Sequence[str]] | None = None,
        *,
        morphology: bool = True,
        cache: dict[FaqEntry, Analysed] | None = None,
    ) -> None:
        """``cache`` (entry -> its analysis) makes a rebuild after one change cheap: only new or
        changed entries go through the analyser again."""
        self._morphology = morphology
        self._synonyms = _normalised_table(DEFAULT_SYNONYMS if synonyms is None else synonyms)
        self._docs: list[_Doc] = []
        self._by_id: dict[str, int] = {}
        field_tf: list[list[Counter[str]]] = []  # doc -> [question, meta, answer] token counts
        field_len: list[list[int]] = []
        uni_tf: list[dict[str, float]] = []
        lexicon: Counter[tuple[str, str]] = Counter()  # (reading, written) of the nouns seen
        for entry in entries:
            done = cache.get(entry) if cache is not None else None
            if done is None:
                done = _analyse(entry, morphology)
                if cache is not None:
                    cache[entry] = done
            self._by_id[entry.id] = len(self._docs)
            self._docs.append(done.doc)
            field_tf.append(done.tfs)
            field_len.append(done.lens)
            uni_tf.append(done.unis)
            lexicon.update(done.words)
        n = len(self._docs)
        self.size = n
        avg = [(sum(lens[i] for lens in field_len) / n if n else 1.0) for i in range(len(FIELDS))]
        params = [(weight, b, avg[i]) for i, (weight, b) in enumerate(FIELDS.values())]
        saturate = K1 + 1
        build: dict[str, tuple[list[int], list[float]]] = {}
        for doc_id, (tfs, lens) in enumerate(zip(field_tf, field_len, strict=True)):
            pseudo: dict[str, float] = {}
            get = pseudo.get
            for (weight, b, mean), counts, length in zip(params, tfs, lens, strict=True):
                factor = weight / (1.0 - b + b * length / mean)
                for tok, tf in counts.items():
                    pseudo[tok] = get(tok, 0.0) + factor * tf
            pseudo.update(uni_tf[doc_id])  # one-character tokens: their own space, weighted tf as is
            for tok, ptf in pseudo.items():
                lists = build.get(tok)
                if lists is None:
                    lists = build[tok] = ([], [])
                lists[0].append(doc_id)
                lists[1].append(ptf * saturate / (ptf + K1))
        field_tf.clear()
        uni_tf.clear()
        self._postings: dict[str, _Postings] = {tok: _Postings.build(*lists) for tok, lists in build.items()}
        self._sorted: dict[str, NDArray[np.int32]] = {}  # token -> its doc ids in order, made on first need
        self._lexicon = lexicon
        self._by_reading = self._reading_table()

    def _reading_table(self) -> dict[str, str]:
        """A word typed in hiragana -> the kanji word with that reading (the most frequent written
        form), so いんかん searches as 印鑑; the synonym words are known by their readings too."""
        lexicon = Counter(self._lexicon)
        if self._morphology:
            for key, _values in self._synonyms:
                if not hiragana_only(key):
                    known = [(r, w) for r, w in morph.analyse(key).words if w == key]
                    lexicon.update(known or [(morph.reading(key), key)])
        by_reading: dict[str, str] = {}
        for (kana, written), _count in lexicon.most_common():
            if len(kana) >= READING_MIN_CHARS:
                by_reading.setdefault(kana, written)
        return by_reading

    def with_synonyms(self, synonyms: Mapping[str, Sequence[str]]) -> FaqIndex:
        """The same index with another synonym table (synonyms act at query time: no rebuild)."""
        other = copy.copy(self)
        other._synonyms = _normalised_table(synonyms)
        other._by_reading = other._reading_table()
        return other

    def __len__(self) -> int:
        return self.size

    def get(self, faq_id: str) -> FaqEntry | None:
        index = self._by_id.get(faq_id)
        return None if index is None else self._docs[index].entry

    def entries(self) -> list[FaqEntry]:
        return [doc.entry for doc in self._docs]

    def _idf(self, df: int) -> float:
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def _alternatives(self, word: str, part: str) -> list[Alternative]:
        """How one query word may be written in an entry: as typed, Sudachi's normalised form,
        as a reading (a word typed in hiragana: the kanji word read so, and the reading itself),
        and the synonyms of each of these."""
        alts = [Alternative(part, tuple(surface_tokens(part)))]
        spellings = [part]
        if self._morphology:
            forms = morph.variants(word)
            if forms:
                alts.append(Alternative(" ".join(forms), tuple(grams(" ".join(forms))), True))
            if hiragana_only(part) and len(part) >= READING_MIN_CHARS:
                written = self._by_reading.get(part)
                if written is not None:
                    spellings.append(written)
                    alts.append(Alternative(written, tuple(surface_tokens(written)), True))
                alts.append(Alternative(part, tuple(READ + g for g in run_grams(part))))
        for spelling in spellings:
            for key, values in self._synonyms:
                if key in spelling:
                    # The rest of the word still has to be found: 水道料金 -> 保育料 covers only 料金.
                    rest = surface_tokens(spelling.replace(key, " "))
                    alts.extend(
                        Alternative(v, tuple(surface_tokens(v) + rest), True) for v in values if v != part
                    )
        return [a for a in alts if a.tokens]

    def _query(self, query: str) -> _Query:
        groups: list[list[Alternative]] = []
        katakana: set[str] = set()  # bigrams typed in katakana: content words, though folded to hiragana
        for word in query.split():
            part = normalize(word)
            katakana |= katakana_grams(word)
            if runs(part):
                alts = self._alternatives(word, part)
                if alts:
                    groups.append(alts)
        found: dict[str, tuple[_Postings, float]] = {}
        for alts in groups:
            for alt in alts:
                for tok in alt.tokens:
                    plist = self._postings.get(tok)
                    if plist is not None and tok not in found:
                        found[tok] = (plist, self._idf(len(plist.docs)))
        limit = COMMON_DF_RATIO * self.size
        rare = {t: v for t, v in found.items() if len(v[0].docs) <= limit}
        chosen = rare or found
        content = any(not hiragana_only(t) for t in chosen if t[0] not in (UNI, READ))
        terms = [(tok, plist, idf * token_weight(tok, content)) for tok, (plist, idf) in chosen.items()]
        # The coverage (is anything close?) counts a word typed in katakana as the content word it
        # is; the ranking keeps the weights it was tuned with (exempting katakana there measured
        # no better on the tuning set).
        weights = {tok: 0.0 for tok in found}
        weights.update({tok: idf * token_weight(tok, content, tok in katakana) for tok, (_p, idf) in chosen.items()})
        unknown = self._idf(0)
        for alts in groups:
            for alt in alts:
                for tok in alt.tokens:
                    if tok not in weights:
                        weights[tok] = unknown * token_weight(tok, content, tok in katakana)
        return _Query(groups, terms, weights)

    def search(
        self,
        query: str,
        limit: int = 10,
        *,
        allowed: Callable[[FaqEntry], bool] | None = None,
    ) -> list[SearchHit]:
        """Rank entries for `query`; raise ValueError on an empty or over-long query or bad limit."""
        query = _check_query(query)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
        parsed = self._query(query)
        terms = parsed.terms
        if not terms:
            return []
        # Postings are impact-ordered (highest weight first); a common token contributes only its
        # IMPACT_CAP strongest postings, which bounds the work per token on a large FAQ.
        cap = IMPACT_CAP
        docs = np.concatenate([plist.docs[:cap] for _tok, plist, _idf in terms])
        weights = np.concatenate([plist.weights[:cap] * idf for _tok, plist, idf in terms])
        scores = np.bincount(docs, weights=weights, minlength=self.size)
        if allowed is not None:
            scores *= np.fromiter((allowed(doc.entry) for doc in self._docs), dtype=bool, count=self.size)
        candidates = np.flatnonzero(scores > 0.0)
        wanted = max(limit * 4, 20)
        if len(candidates) > wanted:
            candidates = candidates[np.argpartition(-scores[candidates], wanted - 1)[:wanted]]
        # Phrase bonus on the shortlist: a query word (or its variant, reading or synonym) found
        # contiguously in the question.
        phrases = [[a.text for a in alts if len(a.text) > 1] for alts in parsed.groups]
        boosted: list[tuple[int, float]] = []
        for doc_id, score in zip(candidates.tolist(), scores[candidates].tolist(), strict=True):
            doc = self._docs[doc_id]
            found = sum(1 for texts in phrases if any(t in doc.q_norm or t in doc.q_extra for t in texts))
            boosted.append((doc_id, score * (1.0 + PHRASE_BONUS * found)))
        top = heapq.nlargest(limit, boosted, key=_by_score_then_id)
        tokens = {tok for tok, _p, _i in terms if tok[0] not in (UNI, READ)} | {
            tok[1:] for tok, _p, _i in terms if tok[0] == UNI
        }
        found_in = self._membership([doc_id for doc_id, _score in top], parsed.weights)
        known = self._postings.keys()
        return [
            self._hit(doc_id, score, tokens, coverage(doc_id, parsed.groups, parsed.weights, found_in, known))
            for doc_id, score in top
        ]

    def _membership(self, doc_ids: list[int], weights: Mapping[str, float]) -> dict[str, set[int]]:
        """For each weighted query token known to the index, which of `doc_ids` contain it (binary
        search in the token's doc ids, sorted once per token and kept)."""
        wanted = np.asarray(doc_ids, dtype=np.int32)
        out: dict[str, set[int]] = {}
        for tok, weight in weights.items():
            plist = self._postings.get(tok)
            if weight <= 0.0 or plist is None or not doc_ids:
                continue
            ordered = self._sorted.get(tok)
            if ordered is None:
                ordered = self._sorted[tok] = np.sort(plist.docs)
            pos = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
            out[tok] = set(wanted[ordered[pos] == wanted].tolist())
        return out

    def _hit(self, doc_id: int, score: float, tokens: set[str], coverage: float) -> SearchHit:
        doc = self._docs[doc_id]
        q_spans = map_spans(match_spans(doc.q_norm, tokens), doc.q_map, len(doc.entry.question))
        a_spans = map_spans(match_spans(doc.a_norm, tokens), doc.a_map, len(doc.entry.answer))
        excerpt, s_spans = snippet(doc.entry.answer, a_spans)
        return SearchHit(doc.entry, score, q_spans, excerpt, s_spans, coverage)


def _normalised_table(table: Mapping[str, Sequence[str]]) -> list[tuple[str, list[str]]]:
    return [(normalize(k), [normalize(v) for v in vs]) for k, vs in table.items() if normalize(k)]


def _by_score_then_id(item: tuple[int, float]) -> tuple[float, int]:
    # Ties broken by insertion order (earlier entries first) for deterministic output.
    return (item[1], -item[0])


def _check_query(query: str) -> str:
    if not isinstance(query, str):
        raise ValueError("query must be text")
    query = query.strip()
    if not query:
        raise ValueError("query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
    return query


# ---------------------------------------------------------------------------------------------
# Suggestions for a screen pop


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
