"""Morphological variants and readings for the FAQ search (SudachiPy with its packaged core dictionary).

Two things the character bigrams of faq/textnorm.py cannot see:

- **orthographic and okurigana variants**: Sudachi's normalised form folds 申込/申込み/申し込み to 申し込み,
  届出/届け出 to 届け出, 引越し to 引っ越し, 才 to 歳, 水ぼうそう to 水疱瘡. ``variants`` lists, for each content
  morpheme whose normalised form differs from how it is written, that normalised form. The index adds
  the variants' bigrams to a field beside the written text, and the query adds its own: each side then
  carries both spellings, so either spelling finds the other.
- **a caller's sentence**: ``content_pieces`` splits 妊娠したらどうすればいい into its content pieces
  (妊娠); the index weighs the other bigrams of the word (the endings) down.
- **readings**: ``reading`` is the text's reading in hiragana (印鑑登録 -> いんかんとうろく), indexed in a
  separate token space so that a query typed in hiragana (いんかん) finds the kanji.

The dictionary ships inside the sudachidict-core wheel; it is loaded (mmapped, file-backed, shared
with other processes) once per process on the first analysis, and each thread gets its own tokenizer
from it (the tokenizer is not thread-safe; the index is built in a worker thread while the event loop
searches). A server with no FAQ entries never loads it. The pages an analysis touches stay in the
process's RSS until released (release_pages, faq/memory.py): after an index build, and at most once
a minute while searches run. Otherwise pure computation.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faq.memory import drop_mapped_pages
from faq.textnorm import normalize

# Parts of speech whose normalised form is worth indexing (particles and auxiliaries are not).
CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "接尾辞", "接頭辞", "副詞"})
# Morphemes that break a reading (a reading never runs across punctuation or spaces).
BREAK_POS = frozenset({"補助記号", "空白", "記号"})

_local = threading.local()
_dictionary: Any = None
_dictionary_lock = threading.Lock()


def _shared_dictionary() -> Any:
    """The one Dictionary of the process, loaded on first use. A Dictionary per thread mapped the
    193 MB system.dic once per thread, and each mapping's touched pages counted in the RSS again
    (two mappings, ~200 MiB, in a server that had built its index in a worker thread)."""
    global _dictionary
    with _dictionary_lock:
        if _dictionary is None:
            from sudachipy import Dictionary  # type: ignore[import-untyped]  # 50 ms, mmaps the dictionary

            _dictionary = Dictionary(dict="core")
        return _dictionary


def dictionary_file() -> Path:
    """The system dictionary the analyser maps (inside the sudachidict-core package)."""
    import sudachidict_core  # type: ignore[import-untyped]

    return Path(sudachidict_core.__file__).parent / "resources" / "system.dic"


def release_pages() -> int:
    """After an index build: drop the dictionary pages the build touched from this process's
    resident set (faq/memory.py); searches fault in only what they read. Bytes advised."""
    if _dictionary is None:
        return 0
    return drop_mapped_pages(dictionary_file())


def is_loaded() -> bool:
    """Whether this process has loaded the dictionary (only an analysis does)."""
    return _dictionary is not None


def _tokenizer() -> Any:
    # Sudachi's own model: one Dictionary shared by the threads, one Tokenizer per thread (a
    # Tokenizer is not thread-safe).
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _local.tokenizer = _shared_dictionary().tokenizer()
    return tokenizer


# The dictionary's pages are dropped from the RSS again at most this often, when the analyser runs
# (searches; an index build releases at its end, faq/service.py). A search faults in ~10 pieces of
# 64 kB (the kernel maps 16 pages around each page read): 1-2 MiB for a query not seen before, ~80
# MiB for the 373 labelled queries. After a release the next searches pay the faults again (from the
# page cache, no I/O: ~0.03 ms an analysis); releasing every 256 analyses put that into 1 % of the
# searches and doubled the search p99 (bench/faq_bench.py); once a minute it stays out of it. The
# madvise takes ~3 ms (it walks the 193 MB range): a short thread does it (ctypes releases the GIL).
RELEASE_INTERVAL = 60.0  # seconds (time.monotonic)
_last_release = 0.0


def _morphemes(text: str) -> Any:
    from sudachipy import SplitMode

    global _last_release
    now = time.monotonic()
    if now - _last_release >= RELEASE_INTERVAL:
        if _last_release:  # (not at the first analysis: nothing is resident yet)
            threading.Thread(target=release_pages, name="faq-release-dictionary-pages", daemon=True).start()
        _last_release = now  # (racy across threads: a release more or less does not matter)

    # Sudachi reads NFKC text best (full-width digits, half-width katakana); it refuses very long input.
    return _tokenizer().tokenize(unicodedata.normalize("NFKC", text)[:20000], SplitMode.C)


@dataclass(frozen=True)
class Analysis:
    variants: list[str]  # see variants()
    reading: str  # see reading()
    words: list[tuple[str, str]]  # (reading, written form) of the nouns written with kanji
    concepts: tuple[str, ...]  # the synonym groups of its content words (_concepts_of)
    ungrouped: tuple[str, ...]  # its content words that belong to no synonym group (normalised)


@functools.lru_cache(maxsize=8192)
def analyse(text: str) -> Analysis:
    """variants, reading and kanji nouns with their readings, in one pass of the analyser (cached:
    category and keyword texts repeat across entries). Callers must not change the lists."""
    forms: list[str] = []
    parts: list[str] = []
    words: list[tuple[str, str]] = []
    concepts: list[str] = []
    ungrouped: list[str] = []
    for m in _morphemes(text):
        pos = _pos(m)
        if pos in BREAK_POS:
            parts.append(" ")
            continue
        kana = m.reading_form()
        parts.append(kana)
        if pos not in CONTENT_POS:
            continue
        groups = _concepts_of(m)
        concepts.extend(groups)
        if not groups and not _light(m):
            ungrouped.append(normalize(m.surface()))
        raw_surface, raw_form = m.surface(), m.normalized_form()
        if raw_form != raw_surface:  # most morphemes are written in their normal form: skip the folding
            surface, form = normalize(raw_surface), normalize(raw_form)
            if form != surface and form:
                forms.append(form)
        if pos == "名詞" and not _kana_only(raw_surface):
            # interned: the same nouns recur in every entry (2.6 of the municipal FAQ's 3.7 MiB of words)
            words.append((sys.intern(normalize(kana)), sys.intern(normalize(raw_surface))))
    return Analysis(forms, normalize("".join(parts)), words, tuple(concepts), tuple(ungrouped))


def _light(m: Any) -> bool:
    """A content morpheme that carries no topic: a light lemma or a formal noun written in kana."""
    return m.normalized_form() in LIGHT_LEMMAS or m.surface() in LIGHT_KANA_NOUNS


def _concepts_of(m: Any) -> list[str]:
    """A content word's synonym groups: the core dictionary carries, per word, the ids of the
    groups of SudachiDict's synonym dictionary it belongs to (旦那 and 夫 share one, 引っ越し and
    転居 one, 母子手帳 and 母子健康手帳 one, 育休 and 育児休業 one). Light words (する, こと) have none
    worth matching."""
    if _light(m):
        return []
    return [str(g) for g in m.synonym_group_ids()]


_POS_BY_ID: dict[int, str] = {}


def _pos(morpheme: Any) -> str:
    """The morpheme's part of speech (first level), looked up once per POS id."""
    pos_id = morpheme.part_of_speech_id()
    pos = _POS_BY_ID.get(pos_id)
    if pos is None:
        pos = _POS_BY_ID[pos_id] = str(morpheme.part_of_speech()[0])
    return pos


def _kana_only(text: str) -> bool:
    # hiragana, katakana and the half-width katakana block: words with no kanji have no reading to look up
    return all("\u3041" <= ch <= "\u30ff" or "\uff66" <= ch <= "\uff9f" for ch in text)


@functools.lru_cache(maxsize=4096)
def variants(text: str) -> tuple[str, ...]:
    """Normalised forms (faq.textnorm.normalize'd) of the content morphemes written differently
    (cached like content_pieces: a query asks it for each of its words more than once)."""
    out: list[str] = []
    for m in _morphemes(text):
        if _pos(m) not in CONTENT_POS or _light(m):  # 為る, 良い; ところ -> 所, こと -> 事: no topic
            continue
        surface = normalize(m.surface())
        form = normalize(m.normalized_form())
        if form != surface and form:
            out.append(form)
    return tuple(out)


def reading(text: str) -> str:
    """The text's reading in hiragana; punctuation and spaces become single spaces."""
    parts: list[str] = []
    for m in _morphemes(text):
        if m.part_of_speech()[0] in BREAK_POS:
            parts.append(" ")
        else:
            parts.append(m.reading_form())
    return normalize("".join(parts))


# Words that carry no topic in a caller's sentence: する, ある, いる, くる, いい, なる, できる, どう, and the
# asking verbs (わからない, 教えて, 知りたい, ほしい, もらう); with the formal nouns written in kana (とき, こと)
# they separate a query word's content pieces as particles do.
LIGHT_LEMMAS = frozenset(
    "為る 有る 居る 来る 良い 成る 言う 出来る どう 如何 分かる 知る 教える 下さる 思う 欲しい 頂く 貰う".split()
)
LIGHT_KANA_NOUNS = frozenset({"とき", "こと", "もの", "ところ", "ため", "よう", "の", "ん"})
SPLIT_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})


@functools.lru_cache(maxsize=4096)
def content_pieces(word: str) -> tuple[str, ...]:
    """A caller's sentence typed as one word (妊娠したらどうすればいい, 住民票を取りたい) split into its
    runs of content morphemes (妊娠; 住民票, 取り): particles, auxiliaries and light words separate
    them, so that endings and function words no longer outweigh the topic. Empty if nothing is left."""
    pieces: list[str] = []
    current: list[str] = []
    for m in _morphemes(word):
        surface = m.surface()
        light = (
            _pos(m) in SPLIT_POS
            or m.normalized_form() in LIGHT_LEMMAS
            or (surface in LIGHT_KANA_NOUNS and _pos(m) == "名詞")
        )
        if light:
            if current:
                pieces.append("".join(current))
            current = []
        else:
            current.append(surface)
    if current:
        pieces.append("".join(current))
    return tuple(pieces)


def warm_up() -> None:
    """Load the dictionary now (at start-up) rather than on the first search."""
    _morphemes("保育園")
