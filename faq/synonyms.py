"""The synonym dictionary of the FAQ search: rules the FAQ editors maintain in the browser.

One rule a line, in either form:

    学童 = 放課後クラブ                 words that mean the same: each finds the others
    ソファ, ベッド, タンス → 粗大ごみ    a caller's word -> the wording the FAQ uses (one way; ``->`` too)

A query word that contains a rule's left side (or, for ``=``, any member) also searches the other
side. Lines starting with ``#`` and blank lines are ignored. Pure: parsing and the lookup table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from faq.textnorm import normalize

MAX_RULES = 2000
MAX_TERM_CHARS = 40

_ARROW = re.compile(r"\s*(?:→|->|⇒)\s*")
_LIST = re.compile(r"\s*[,、，]\s*")
_EQUALS = re.compile(r"\s*[=＝]\s*")


class SynonymError(ValueError):
    """A synonym rule cannot be read; the message names the line."""


@dataclass(frozen=True)
class SynonymRule:
    sources: tuple[str, ...]  # the words a caller may say
    targets: tuple[str, ...]  # the words searched besides them
    two_way: bool  # True for "A = B" (every member finds the others)

    def text(self) -> str:
        if self.two_way:
            return " = ".join(self.sources)
        return ", ".join(self.sources) + " → " + ", ".join(self.targets)


def parse_rule(line: str, where: str = "rule") -> SynonymRule:
    line = line.strip()
    if _ARROW.search(line):
        pieces = _ARROW.split(line)
        if len(pieces) != 2:
            raise SynonymError(f"{where}: one arrow per rule (A → B)")
        sources, targets = (_terms(p, where) for p in pieces)
        return SynonymRule(sources, targets, False)
    members = tuple(t for t in (_clean(p, where) for p in _EQUALS.split(line)) if t)
    if len(members) < 2 or "=" not in line.replace("＝", "="):
        raise SynonymError(f"{where}: write 'A = B' (same meaning) or 'A → B' (caller's word → FAQ wording)")
    if len(set(members)) != len(members):
        raise SynonymError(f"{where}: a word appears twice")
    return SynonymRule(members, members, True)


def _terms(piece: str, where: str) -> tuple[str, ...]:
    terms = tuple(t for t in (_clean(p, where) for p in _LIST.split(piece)) if t)
    if not terms:
        raise SynonymError(f"{where}: empty side")
    return terms


def _clean(term: str, where: str) -> str:
    term = term.strip()
    if len(term) > MAX_TERM_CHARS:
        raise SynonymError(f"{where}: word longer than {MAX_TERM_CHARS} characters")
    if any(ch in term for ch in "=→\n"):
        raise SynonymError(f"{where}: unexpected symbol in {term!r}")
    return term


def parse_rules(text: str) -> list[SynonymRule]:
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            rules.append(parse_rule(line, f"line {number}"))
    if len(rules) > MAX_RULES:
        raise SynonymError(f"at most {MAX_RULES} rules")
    return rules


def synonym_table(rules: Iterable[SynonymRule]) -> dict[str, tuple[str, ...]]:
    """word -> the words also searched for it (the form FaqIndex takes)."""
    table: dict[str, list[str]] = {}
    for rule in rules:
        for source in rule.sources:
            extra = table.setdefault(source, [])
            extra.extend(t for t in rule.targets if t != source and t not in extra)
    return {word: tuple(extra) for word, extra in table.items() if extra}


class SynonymLookup:
    """The synonym table as the search uses it: the normalised (key, values) rules in table order,
    and their keys by length, so that the rules found in a query word are looked up by the word's
    substrings of each key length rather than each of the ~1,000 keys searched in the word (which
    was most of a query's time once the editors' rules were shipped)."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.rules = [(normalize(k), [normalize(v) for v in vs]) for k, vs in table.items() if normalize(k)]
        # two spellings of a key (ゴミ and ごみ) normalise to one key: its positions, in table order
        self._by_length: dict[int, dict[str, list[int]]] = {}
        for position, (key, _values) in enumerate(self.rules):
            self._by_length.setdefault(len(key), {}).setdefault(key, []).append(position)

    def inside(self, spelling: str) -> list[tuple[str, list[str]]]:
        """The rules whose key occurs in ``spelling`` (normalised), in table order."""
        found: set[int] = set()
        for length, positions in self._by_length.items():
            for start in range(len(spelling) - length + 1):
                found.update(positions.get(spelling[start : start + length], ()))
        return [self.rules[position] for position in sorted(found)]


# Shipped rules: operator shorthand and the ward's words for what the (municipal template) FAQ says.
# The editors' own rules (stored with the FAQ) are added to these.
DEFAULT_RULES_TEXT = (Path(__file__).parent / "default_synonyms.txt").read_text(encoding="utf-8")

DEFAULT_RULES: list[SynonymRule] = parse_rules(DEFAULT_RULES_TEXT)
DEFAULT_SYNONYMS: Mapping[str, Sequence[str]] = synonym_table(DEFAULT_RULES)
