"""What the index keeps of one FAQ entry before the corpus statistics: each field's token counts
(bigrams of the written text, of Sudachi's normalised forms, and for questions and keywords of the
reading), one-character tokens, and the (reading, written) nouns for the reading lexicon. The
analysis of an unchanged entry is cached across rebuilds (see FaqIndex)."""

from __future__ import annotations

import sys
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from faq import morph
from faq.aspects import aspects_of
from faq.entries import FaqEntry
from faq.query_words import CONCEPT, READ, UNI
from faq.textnorm import grams, normalize, normalize_with_map, unigrams

# field name -> (weight, b)
FIELDS: dict[str, tuple[float, float]] = {
    "question": (3.0, 0.5),
    "category": (1.5, 0.3),
    "keywords": (1.5, 0.3),
    "answer": (1.0, 0.75),
}


@dataclass
class Doc:
    entry: FaqEntry
    q_norm: str
    a_norm: str
    a_map: list[int] | None  # None: identity
    q_map: list[int] | None
    q_extra: str  # the question's variants and reading (for the phrase bonus)
    aspects: frozenset[str]  # what the question asks about its topic (faq/aspects.py)


@dataclass(frozen=True)
class TokenCounts:
    """One field's token counts, compact: its distinct tokens, interned (a bigram found in many
    entries is one string), and their counts in the same order. The service keeps every entry's
    analysis for cheap rebuilds; as a Counter per field it took 19 of the 28 MiB of the municipal
    FAQ's index (tracemalloc), as tuples and arrays ~4."""

    tokens: tuple[str, ...]
    counts: array[float]

    @staticmethod
    def of(counts: Mapping[str, float]) -> TokenCounts:
        return TokenCounts(tuple(map(sys.intern, counts)), array("d", counts.values()))

    def items(self) -> Iterator[tuple[str, float]]:
        return zip(self.tokens, self.counts, strict=True)


@dataclass(frozen=True)
class Analysed:
    """What the index keeps of one entry before the corpus statistics (cacheable across rebuilds)."""

    doc: Doc
    tfs: list[TokenCounts]  # token counts of each of FIELDS, in order
    lens: list[int]
    unis: TokenCounts  # one-character tokens, weighted by field
    words: list[tuple[str, str]]  # (reading, written) nouns, for the reading lexicon


def analyse(entry: FaqEntry, morphology: bool) -> Analysed:
    q_norm, q_map = normalize_with_map(entry.question)
    a_norm, a_map = normalize_with_map(entry.answer)
    category = f"{entry.category} {entry.subcategory or ''}"
    keywords = " ".join(entry.keywords)
    tfs: list[TokenCounts] = []
    lens: list[int] = []
    unis: dict[str, float] = {}
    words: list[tuple[str, str]] = []
    q_extra = ""
    sources = (
        (entry.question, q_norm, True),
        (category, normalize(category), True),
        (keywords, normalize(keywords), True),
        (entry.answer, a_norm, False),
    )
    for (weight, _b), (text, norm, with_reading) in zip(FIELDS.values(), sources, strict=True):
        tokens = grams(norm)
        if morphology and text.strip():
            analysis = morph.analyse(text)
            if analysis.variants:
                tokens += grams(" ".join(analysis.variants))
            if with_reading:
                tokens += [READ + g for g in grams(analysis.reading)]
            tokens += [CONCEPT + c for c in analysis.concepts]
            if text is entry.question:
                q_extra = " ".join([*analysis.variants, analysis.reading])
            words.extend(analysis.words)
        tfs.append(TokenCounts.of(Counter(tokens)))
        lens.append(max(len(tokens), 1))
        for ch, count in Counter(unigrams(norm)).items():
            unis[UNI + ch] = unis.get(UNI + ch, 0.0) + weight * count
    doc = Doc(entry, q_norm, a_norm, a_map, q_map, q_extra, aspects_of(entry.question))
    return Analysed(doc, tfs, lens, TokenCounts.of(unis), words)
