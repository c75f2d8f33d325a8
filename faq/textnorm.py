"""Pure Japanese text normalisation and tokenisation for the FAQ search.

One function decides what "the same text" means for both the index and the query:

- NFKC (full-width ASCII and half-width katakana fold: ＡＢＣ -> abc, ｺﾞﾐ -> ゴミ -> ごみ),
- case folding,
- katakana -> hiragana (ゴミ and ごみ match), the counter's small ヶ/ヵ -> か (6ヶ月 and 6か月 match),
- anything that is not a letter, digit or kana/kanji (punctuation, spaces, ○ placeholders)
  separates "runs"; n-grams never cross a run boundary.

Tokens are character bigrams inside each run; a run of one character yields that character as
a unigram, so 1- and 2-character queries (税, ごみ, 印鑑) work, which FTS5's trigram tokenizer
cannot do. ``normalize_with_map`` also returns, for each normalised character, the index of the
original character it came from, so highlights found in normalised text map back to the original.
"""

from __future__ import annotations

import operator
import re
import unicodedata

_KATA_START = 0x30A1  # ァ
_KATA_END = 0x30F6  # ヶ
_KATA_TO_HIRA = 0x60
_COMBINING_MARKS = ("\u3099", "\u309a")  # (han)dakuten left over by per-character NFKC


_COUNTER_KA = frozenset("ヵヶゕゖ")  # the counter's small ka: 6ヶ月 and 6か月, 3ヵ所 and 3か所 are one spelling


def _fold_char(ch: str) -> str:
    if ch in _COUNTER_KA:
        return "か"
    code = ord(ch)
    if _KATA_START <= code <= _KATA_END:
        return chr(code - _KATA_TO_HIRA)
    return ch


class _FoldTable(dict[int, str]):
    """Per-character fold (NFKC, casefold, katakana -> hiragana), computed once per character;
    usable with str.translate. Characters that do not fold to exactly one character, and the
    combining (han)dakuten, are remembered as irregular: text containing them takes the slow path."""

    def __init__(self) -> None:
        super().__init__()
        self.irregular: set[str] = set()

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        folded = "".join(_fold_char(part) for part in unicodedata.normalize("NFKC", ch).casefold())
        if len(folded) != 1 or folded in _COMBINING_MARKS:
            self.irregular.add(ch)
        self[code] = folded
        return folded


_TABLE = _FoldTable()


def normalize_with_map(text: str) -> tuple[str, list[int] | None]:
    """Normalised text plus, for each of its characters, the index of the source character
    (None when that is the identity: every character folded to exactly one character)."""
    folded = text.translate(_TABLE)
    if len(folded) == len(text) and _TABLE.irregular.isdisjoint(text):
        return folded, None
    out: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for part in _TABLE[ord(ch)]:
            if part in _COMBINING_MARKS and out:
                # ｶﾞ: compose with the previous character (か+゙ -> が), as whole-string NFKC does.
                composed = unicodedata.normalize("NFC", out[-1] + part)
                if len(composed) == 1:
                    out[-1] = _fold_char(composed)
                    continue
            out.append(part)
            origin.append(index)
    return "".join(out), origin


def normalize(text: str) -> str:
    """The canonical form used for indexing and querying."""
    return normalize_with_map(text)[0]


_RUN = re.compile(r"[^\W_]+")  # letters and digits of any script (str.isalnum), not "_"
_NON_WORD = re.compile(r"[\W_]+")


def is_word_char(ch: str) -> bool:
    return ch.isalnum()


def runs(norm: str) -> list[tuple[int, str]]:
    """Maximal runs of word characters in normalised text, with their start offsets."""
    return [(m.start(), m.group()) for m in _RUN.finditer(norm)]


def run_grams(run: str) -> list[str]:
    """Bigrams of one run; a one-character run is its own (unigram) token."""
    if len(run) == 1:
        return [run]
    return list(map(operator.add, run, run[1:]))


def grams(norm: str) -> list[str]:
    """All tokens of normalised text, in order, with repeats (term frequencies count them)."""
    tokens: list[str] = []
    for match in _RUN.finditer(norm):
        run = match.group()
        if len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(map(operator.add, run, run[1:]))
    return tokens


def unigrams(norm: str) -> str:
    """Every word character as a token (indexed separately, for one-character queries)."""
    return _NON_WORD.sub("", norm)
