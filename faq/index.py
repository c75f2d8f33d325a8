"""The FAQ's in-memory inverted index and its ranking (BM25F), coverage and highlighted hits.

No I/O here: the service (faq/service.py) reads the database and hands the entries to
:class:`FaqIndex`; file parsing is faq/parsing.py; one entry's analysis is faq/analysis.py, the
entries and hits faq/entries.py, snippets faq/snippets.py, screen-pop suggestions
faq/suggestions.py, the IVR category labels faq/categories.py.

Ranking is BM25F over character bigrams (see faq/textnorm.py): each field has a weight
(question 3, category/keywords 1.5, answer 1) and its own length normalisation; per-posting weights
are precomputed when the index is built (numpy arrays), so a query is one np.bincount over the
postings of its tokens plus a partial sort. Beside the written text each field carries the bigrams
of Sudachi's normalised forms of its words (申込 -> 申し込み) and, for questions and keywords, of
its reading in a separate token space (faq/morph.py).

A query word is searched in all its forms (``Alternative``): as typed, its normalised form, the
kanji word with its reading when typed in hiragana (いんかん -> 印鑑) or the kanji compounds whose
readings its hiragana spells out (じどうてあての振込日 -> 児童手当), and its synonyms (faq/synonyms.py).
On the query side, bigrams across a script change (の出, 当は) and hiragana-only bigrams next to kanji
words weigh less, tokens found in more than 40% of the entries are skipped,
bigrams of a caller's sentence outside its content pieces (したらどうすればいい, LIGHT_WEIGHT) weigh
little, and each token reads at most its IMPACT_CAP strongest postings (postings are sorted by weight),
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
from faq.analysis import FIELDS, Analysed, Doc, TokenCounts, analyse
from faq.aspects import aspects_of
from faq.entries import MAX_LIMIT, MAX_QUERY_CHARS, FaqEntry, SearchHit
from faq.postings import Postings, PostingTable
from faq.query_words import (
    CONCEPT,
    READ,
    UNI,
    Alternative,
    concept_spelling,
    coverages,
    hiragana_only,
    katakana_grams,
    reading_pieces,
    surface_tokens,
    token_weight,
)
from faq.snippets import map_spans, match_spans, snippet
from faq.synonyms import DEFAULT_SYNONYMS, SynonymLookup
from faq.textnorm import grams, normalize, run_grams, runs

K1 = 1.2
PHRASE_BONUS = 0.5  # score multiplier per query part found whole in the question
ASPECT_BONUS = 0.5  # score multiplier when the question asks what the caller asks (faq/aspects.py)
COVERAGE_EXPONENT = 0.3  # the shortlist's scores times coverage ** this: every typed word should be there
COVERAGE_FLOOR = 0.05  # ... with a floor, so entries that cover nothing keep their order
COVERAGE_SHORTLIST = 20  # how many of the best entries the coverage reorders (the limit if larger)
COMMON_DF_RATIO = 0.4  # query tokens in more than this share of entries are skipped (if others remain)
IMPACT_CAP = 1000  # strongest postings read per query token (see FaqIndex.search)
SPLIT_WORDS = True  # weigh a sentence's particles and endings down (measured: tests/unit/test_faq_recall.py)
LIGHT_WEIGHT = 0.05  # query-side weight of those bigrams (see morph.content_pieces)
READING_MIN_CHARS = 3  # a hiragana word this long is also looked up as a reading (いつ, どこ are not)
READING_PIECES = True  # look for compounds' readings inside longer hiragana stretches (query_words.reading_pieces)
READING_PIECE_MIN_CHARS = 4  # shortest reading looked for inside a longer word (ばあい, みかた are not)


@dataclass(frozen=True)
class _Query:
    groups: list[list[Alternative]]  # one group per query word
    terms: list[tuple[str, Postings, float]]  # (token, postings, weighted idf), all groups merged
    weights: dict[str, float]  # token -> weight for the coverage: 0 if pruned as common, top idf if unknown
    aspects: frozenset[str]  # what the caller asks about the topic (faq/aspects.py)


def _content_tokens(word: str, part: str) -> set[str]:
    """The tokens of a sentence-like query word that lie in its content pieces (faq/morph.py)."""
    pieces = [normalize(p) for p in morph.content_pieces(word)]
    inside = {t for p in pieces for t in surface_tokens(p)}
    # a one-character piece (熱 in 子どもの熱) is only seen through its bigrams
    singles = {p for p in pieces if len(p) == 1}
    inside |= {t for t in surface_tokens(part) if any(c in t for c in singles)}
    return inside


def _mixed(word: str) -> bool:
    """Hiragana together with kanji or katakana (a hiragana-only word may be a reading: kept whole)."""
    kana = any("\u3041" <= ch <= "\u309f" for ch in word)
    return kana and any(not ("\u3041" <= ch <= "\u309f") and not ch.isascii() for ch in word)


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
        self._synonyms = SynonymLookup(DEFAULT_SYNONYMS if synonyms is None else synonyms)
        self._docs: list[Doc] = []
        self._by_id: dict[str, int] = {}
        field_tf: list[list[TokenCounts]] = []  # doc -> token counts of each of FIELDS
        field_len: list[list[int]] = []
        uni_tf: list[TokenCounts] = []
        lexicon: Counter[tuple[str, str]] = Counter()  # (reading, written) of the nouns seen
        for entry in entries:
            done = cache.get(entry) if cache is not None else None
            if done is None:
                done = analyse(entry, morphology)
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
            pseudo.update(uni_tf[doc_id].items())  # one-character tokens: their own space, weighted tf as is
            for tok, ptf in pseudo.items():
                lists = build.get(tok)
                if lists is None:
                    lists = build[tok] = ([], [])
                lists[0].append(doc_id)
                lists[1].append(ptf * saturate / (ptf + K1))
        field_tf.clear()
        uni_tf.clear()
        self._postings = PostingTable(build)
        build.clear()
        self._sorted: dict[str, NDArray[np.int32]] = {}  # token -> its doc ids in order, made on first need
        self._lexicon = lexicon
        self._learn_readings()

    def _learn_readings(self) -> None:
        self._by_reading = self._reading_table()
        self._longest_reading = max(map(len, self._by_reading), default=0)  # for reading_pieces

    def _reading_table(self) -> dict[str, str]:
        """A word typed in hiragana -> the kanji word with that reading (the most frequent written
        form), so いんかん searches as 印鑑; the synonym words are known by their readings too."""
        lexicon = Counter(self._lexicon)
        if self._morphology and self._docs:  # an empty index finds nothing: no need for the analyser
            for key, _values in self._synonyms.rules:
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
        other._synonyms = SynonymLookup(synonyms)
        other._learn_readings()
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
            # a word typed in hiragana (not a katakana word with a hiragana ending, テニスできるところ)
            whole = hiragana_only(part) and not _mixed(word) and len(part) >= READING_MIN_CHARS
            written = self._by_reading.get(part) if whole else None
            if written is not None:
                spellings.append(written)
                alts.append(Alternative(written, tuple(surface_tokens(written)), True))
            elif READING_PIECES:
                # compounds spelled out in hiragana inside a longer word (じどうてあての振込日)
                pieces = reading_pieces(part, self._by_reading, READING_PIECE_MIN_CHARS, self._longest_reading)
                for piece in pieces:
                    spellings.append(piece)
                    alts.append(Alternative(piece, tuple(surface_tokens(piece)), True))
            if whole:
                alts.append(Alternative(part, tuple(READ + g for g in run_grams(part))))
            grouped = morph.analyse(concept_spelling(word))
            if grouped.concepts:
                # Every content word of it counts for the coverage: its groups, or as typed if it has none
                # (車の車検 is not close to an entry about 車 alone).
                rest = tuple(t for w in grouped.ungrouped for t in surface_tokens(w))
                alts.append(Alternative("", tuple(CONCEPT + c for c in grouped.concepts) + rest))
        for spelling in spellings:
            for key, values in self._synonyms.inside(spelling):
                # The rest of the word still has to be found: 水道料金 -> 保育料 covers only 料金.
                rest = tuple(surface_tokens(spelling.replace(key, " ")))
                alts.extend(Alternative(v, tuple(surface_tokens(v)) + rest, True, rest) for v in values if v != part)
        return [a for a in alts if a.tokens]

    @staticmethod
    def _light_tokens(word: str, part: str, alts: list[Alternative]) -> set[str]:
        """Tokens of a query word that carry no topic: in a sentence (住民票を取りたい) the bigrams of
        its particles and endings, and the kana endings of its dictionary forms (取る: る); a word of
        light words only (どうする) is light whole."""
        if hiragana_only(part) and not _mixed(word):  # テニスできるところ folds to hiragana: still a sentence
            if morph.content_pieces(word):
                return set()
            return {t for a in alts for t in a.tokens}
        if not _mixed(word):
            return set()
        inside = _content_tokens(word, part)
        light = {t for t in surface_tokens(part) if t not in inside}
        forms = " ".join(morph.variants(word))
        for alt in alts[1:]:
            if alt.derived and alt.text in forms:
                light.update(t for t in alt.tokens if hiragana_only(t) and t not in inside)
        return light

    def _query(self, query: str) -> _Query:
        groups: list[list[Alternative]] = []
        katakana: set[str] = set()  # bigrams typed in katakana: content words, though folded to hiragana
        light: set[str] = set()  # bigrams only in a sentence's particles, endings and light words
        content_tokens: set[str] = set()
        for word in query.split():
            part = normalize(word)
            if self._morphology and SPLIT_WORDS and _mixed(word):
                content_tokens |= _content_tokens(word, part)
            katakana |= katakana_grams(word)
            if runs(part):
                alts = self._alternatives(word, part)
                if alts:
                    groups.append(alts)
                if self._morphology and SPLIT_WORDS:
                    light |= self._light_tokens(word, part, alts)
        found: dict[str, tuple[Postings, float]] = {}
        missing: set[str] = set()
        for alts in groups:
            for alt in alts:
                for tok in alt.tokens:
                    if tok in found or tok in missing:  # a word's forms share many tokens
                        continue
                    plist = self._postings.get(tok)
                    if plist is None:
                        missing.add(tok)
                    else:
                        found[tok] = (plist, self._idf(len(plist.docs)))
        limit = COMMON_DF_RATIO * self.size
        rare = {t: v for t, v in found.items() if len(v[0].docs) <= limit}
        chosen = rare or found
        content = any(not hiragana_only(t) for t in chosen if t[0] not in (UNI, READ, CONCEPT))
        light -= content_tokens
        terms = [
            (tok, plist, idf * token_weight(tok, content) * (LIGHT_WEIGHT if tok in light else 1.0))
            for tok, (plist, idf) in chosen.items()
        ]
        # The coverage (is anything close?) counts a word typed in katakana as the content word it
        # is, and a synonym group as the word; the ranking keeps the weights it was tuned with
        # (exempting katakana there measured no better on the tuning set).

        def coverage_weight(tok: str, idf: float) -> float:
            light_factor = LIGHT_WEIGHT if tok in light else 1.0
            return idf * token_weight(tok, content, tok in katakana, for_coverage=True) * light_factor

        weights = {tok: 0.0 for tok in found}
        weights.update({tok: coverage_weight(tok, idf) for tok, (_p, idf) in chosen.items()})
        unknown = self._idf(0)
        for alts in groups:
            for alt in alts:
                for tok in alt.tokens:
                    if tok not in weights:
                        weights[tok] = coverage_weight(tok, unknown)
        return _Query(groups, terms, weights, aspects_of(query))

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
        if not self._docs:  # nothing to find: the analyser is not loaded for it (faq/morph.py)
            return []
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
        boosted = self._boosted(parsed, candidates, scores)
        top, covered = self._reordered_by_coverage(parsed, boosted, limit)
        tokens = {tok for tok, _p, _i in terms if tok[0] not in (UNI, READ, CONCEPT)} | {
            tok[1:] for tok, _p, _i in terms if tok[0] == UNI
        }
        return [self._hit(doc_id, score, tokens, covered[doc_id]) for doc_id, score in top]

    def _boosted(
        self, parsed: _Query, candidates: NDArray[np.intp], scores: NDArray[Any]
    ) -> list[tuple[int, float]]:
        """The candidates' scores with the question bonuses: a query word (or its variant, reading or
        synonym) found contiguously in the question, and the question asking what the caller asks."""
        phrases = [[a.text for a in alts if len(a.text) > 1] for alts in parsed.groups]
        boosted: list[tuple[int, float]] = []
        for doc_id, score in zip(candidates.tolist(), scores[candidates].tolist(), strict=True):
            doc = self._docs[doc_id]
            found = sum(1 for texts in phrases if any(t in doc.q_norm or t in doc.q_extra for t in texts))
            score *= 1.0 + PHRASE_BONUS * found
            score *= 1.0 + (ASPECT_BONUS if parsed.aspects & doc.aspects else 0.0)
            boosted.append((doc_id, score))
        return boosted

    def _reordered_by_coverage(
        self, parsed: _Query, boosted: list[tuple[int, float]], limit: int
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """The `limit` best after the best few are multiplied by a power of their coverage (an entry
        that holds every word the caller typed goes before one that holds the rarest word many
        times), with each one's coverage."""
        shortlist = heapq.nlargest(max(limit, COVERAGE_SHORTLIST), boosted, key=_by_score_then_id)
        found_in = self._membership([doc_id for doc_id, _score in shortlist], parsed.weights)
        shares = coverages(len(shortlist), parsed.groups, parsed.weights, found_in, self._postings.keys())
        covered = {doc_id: float(share) for (doc_id, _s), share in zip(shortlist, shares, strict=True)}
        factors = np.maximum(shares, COVERAGE_FLOOR) ** COVERAGE_EXPONENT
        reranked = [(doc_id, score * float(f)) for (doc_id, score), f in zip(shortlist, factors, strict=True)]
        return heapq.nlargest(limit, reranked, key=_by_score_then_id), covered

    def _membership(self, doc_ids: list[int], weights: Mapping[str, float]) -> dict[str, NDArray[np.bool_]]:
        """For each weighted query token known to the index, which of `doc_ids` contain it, as a mask
        in their order (binary search in the token's doc ids, sorted once per token and kept)."""
        wanted = np.asarray(doc_ids, dtype=np.int32)
        out: dict[str, NDArray[np.bool_]] = {}
        if not doc_ids:
            return out
        for tok, weight in weights.items():
            if weight <= 0.0:
                continue
            ordered = self._sorted.get(tok)
            if ordered is None:
                plist = self._postings.get(tok)
                if plist is None:
                    continue
                ordered = self._sorted[tok] = np.sort(plist.docs)
            pos = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
            out[tok] = ordered[pos] == wanted
        return out

    def _hit(self, doc_id: int, score: float, tokens: set[str], coverage: float) -> SearchHit:
        doc = self._docs[doc_id]
        q_spans = map_spans(match_spans(doc.q_norm, tokens), doc.q_map, len(doc.entry.question))
        a_spans = map_spans(match_spans(doc.a_norm, tokens), doc.a_map, len(doc.entry.answer))
        excerpt, s_spans = snippet(doc.entry.answer, a_spans)
        return SearchHit(doc.entry, score, q_spans, excerpt, s_spans, coverage)


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
