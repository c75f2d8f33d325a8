"""Pure: the query side of the FAQ search. A query word becomes its alternatives (as typed, its
normalised form, its reading, its synonyms: faq/index.py builds them), each a list of tokens in
the index's token spaces; tokens get query-side weights; a hit's coverage says how much of the
query it contains."""

from __future__ import annotations

import unicodedata
from collections.abc import Container, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from faq.textnorm import normalize_with_map, run_grams, runs

CONCEPT_WEIGHT = 0.5  # query-side weight of a synonym group (measured on the tuning sets and holdout2)
CROSSING_WEIGHT = 0.3  # query bigrams across a script change (kanji|hiragana|katakana|ascii)
HIRAGANA_ONLY_WEIGHT = 0.3  # particles and endings (に入, りた) count less when the query has kanji/katakana
UNI = "\x01"  # token-space prefix: one-character tokens (one-character queries)
READ = "\x02"  # token-space prefix: bigrams of readings (hiragana queries)
CONCEPT = "\x03"  # token-space prefix: synonym groups of the dictionary (faq/morph.py concepts)


@dataclass(frozen=True)
class Alternative:
    """One way of reading a query word: as written, its normalised variant, its reading, a synonym."""

    text: str  # found whole in a question (or its reading) -> phrase bonus
    tokens: tuple[str, ...]
    derived: bool = False  # not as typed: its tokens unknown to the index do not count against coverage
    # ... except these: the rest of the typed word beside a synonym (家賃 in 家賃補助 -> 助成): it was
    # typed and must be found
    counted: tuple[str, ...] = ()


def surface_tokens(part: str) -> list[str]:
    out: list[str] = []
    for _start, run in runs(part):
        out.extend(UNI + run if len(run) == 1 else tok for tok in run_grams(run))
    return out


def coverages(
    count: int,
    groups: list[list[Alternative]],
    weight_of: Mapping[str, float],
    found_in: Mapping[str, NDArray[np.bool_]],
    known: Container[str],
) -> NDArray[np.float64]:
    """For `count` entries, the share of the query's words each contains: per word, the best of its
    alternatives (the idf-weighted share of the alternative's tokens found in the entry), averaged
    over the words weighted by their idf (a particle-like いつ or どこ counts less than 保育園).
    ``found_in`` says, for each token, which of the entries hold it (absent: none)."""
    rows = {tok: row for row, tok in enumerate(found_in)}
    held = np.array([found_in[tok] for tok in rows], dtype=np.float64).reshape(len(rows), count)
    total = np.zeros(count)
    mass_total = 0.0
    for alts in groups:
        best = np.zeros(count)
        for alt in alts:
            wanted = [
                (tok, weight_of.get(tok, 0.0))
                for tok in dict.fromkeys(alt.tokens)
                if not (alt.derived and tok not in known and tok not in alt.counted)
            ]
            mass = sum(w for _t, w in wanted)
            present = [(rows[tok], w) for tok, w in wanted if w > 0.0 and tok in rows]
            if mass <= 0.0 or not present:
                continue
            index, weights = zip(*present, strict=True)
            np.maximum(best, np.asarray(weights) @ held[list(index)] / mass, out=best)
        word_mass = sum(weight_of.get(tok, 0.0) for tok in dict.fromkeys(alts[0].tokens)) or 1.0
        total += best * word_mass
        mass_total += word_mass
    return total / mass_total if mass_total else total


def katakana_grams(word: str) -> set[str]:
    """The normalised bigrams of `word` whose two characters were typed in katakana (プリンター)."""
    norm, origin = normalize_with_map(word)
    kata = [_is_katakana(word[origin[i] if origin is not None else i]) for i in range(len(norm))]
    return {norm[i : i + 2] for i in range(len(norm) - 1) if kata[i] and kata[i + 1]}


def _is_katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30ff" or "\uff66" <= ch <= "\uff9f"


def token_weight(tok: str, content: bool, typed_in_katakana: bool = False, for_coverage: bool = False) -> float:
    """Query-side token weight: bigrams spanning a script change (の出, 当は: mostly a particle
    or okurigana glued to a word) and, in queries with kanji/katakana, hiragana-only bigrams
    (いつ, れる) say less about the topic than in-word bigrams (手当, ごみ alone). Reading tokens
    (hiragana by nature) and words typed in katakana (folded to hiragana) are exempt."""
    if tok[0] in (UNI, READ):
        return 1.0
    if tok[0] == CONCEPT:
        # A group ranks an entry at part weight; for the coverage a word's group is the word.
        return 1.0 if for_coverage else CONCEPT_WEIGHT
    weight = 1.0
    if content and hiragana_only(tok) and not typed_in_katakana:
        weight *= HIRAGANA_ONLY_WEIGHT
    if len(tok) == 2 and script(tok[0]) != script(tok[1]):
        weight *= CROSSING_WEIGHT
    return weight


def script(ch: str) -> int:
    if "\u3041" <= ch <= "\u309f":
        return 1
    if "\u30a0" <= ch <= "\u30ff":
        return 2
    if ch.isascii():
        return 3
    return 0


def hiragana_only(token: str) -> bool:
    return all("\u3041" <= ch <= "\u309f" for ch in token)


def kana_runs(part: str) -> list[str]:
    """The maximal hiragana stretches of a normalised query word (katakana is folded already)."""
    out: list[str] = []
    current: list[str] = []
    for ch in part:
        if "\u3041" <= ch <= "\u309f":
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def reading_pieces(part: str, by_reading: Mapping[str, str], min_chars: int, longest: int | None = None) -> list[str]:
    """The kanji compounds whose readings are spelled out in the hiragana of a query word
    (ほいくえんの申し込みかた -> 保育園; にんしょうほいくしょ -> 認証, 保育所): leftmost longest match
    of the readings in ``by_reading`` (reading -> written form), at least ``min_chars`` long, and
    only compounds written with two kanji or more (a one-kanji noun's reading is often a plain
    word: ところ, もの). ``longest``: the longest reading in ``by_reading`` (the index knows it; computed
    here otherwise, a third of a search's time on the municipal FAQ)."""
    found: list[str] = []
    if longest is None:
        longest = max((len(k) for k in by_reading), default=0)
    for run in kana_runs(part):
        i = 0
        while i <= len(run) - min_chars:
            for j in range(min(len(run), i + longest), i + min_chars - 1, -1):
                written = by_reading.get(run[i:j])
                if written is not None and _kanji_count(written) >= 2:
                    found.append(written)
                    i = j
                    break
            else:
                i += 1
    return found


def concept_spelling(word: str) -> str:
    """The spelling a query word's synonym groups are looked up by: a word of kana only is read as
    katakana (まいなんばー, ﾏｲﾅﾝﾊﾞｰ and マイナンバー, ごみ and ゴミ find the same groups, as their
    bigrams do: the ranking does not depend on how a kana word was typed); others as typed."""
    nfkc = unicodedata.normalize("NFKC", word)
    if nfkc and all("\u3041" <= ch <= "\u30ff" for ch in nfkc):
        return "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" else ch for ch in nfkc)
    return word


def _kanji_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or ch == "\u3005")
