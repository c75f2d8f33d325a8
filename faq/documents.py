"""The ward's other sources (website, 広報, 暮らしのガイド): saved web pages, Markdown and PDF files
split at their headings into sections that are searched beside the FAQ.

Pure: functions take bytes and names and return sections; the folder walk that reads the files is
in faq/store.py's caller (faq/cli.py). A folder holds one subfolder per source; each subfolder may
have a ``_source.json``::

    {"label": "区ホームページ", "base_url": "https://www.city.example.lg.jp/"}

The label is shown with every hit; the link of a section is the page's own address when the saved
page names it (``<link rel="canonical">``, ``og:url``, or the browser's ``saved from url`` comment),
else ``base_url`` + the file's path in the folder; plus ``#anchor`` of the heading (HTML ids,
Markdown heading slugs) or ``#page=N`` for PDF.

A section's id is ``doc-<source folder>-<hash of the path>-<n>`` (n = the section's position in the
file; no ``/`` or ``#``, so it fits in a URL path), so a re-import of an unchanged folder yields the
same ids and the same text: nothing changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote

from faq.entries import FaqEntry

SUFFIXES = (".html", ".htm", ".md", ".markdown", ".pdf")
SOURCE_FILE = "_source.json"
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TITLE_CHARS = 120
MAX_BODY_CHARS = 4000  # a longer section is cut into parts with the same title
MIN_BODY_CHARS = 2


class DocumentError(ValueError):
    """A file of the folder cannot be read; the message names it."""


@dataclass(frozen=True)
class SourceInfo:
    key: str  # the subfolder name
    label: str
    base_url: str


@dataclass(frozen=True)
class DocSection:
    id: str
    source: str  # the subfolder name (key)
    source_label: str
    path: str  # the file's path inside the source folder
    title: str
    body: str
    url: str

    def as_entry(self) -> FaqEntry:
        """The section as the search index sees it: the heading is the question, the text the answer."""
        return FaqEntry(self.id, self.title, self.body, self.source_label, None, ())

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "source": self.source,
            "source_label": self.source_label,
            "path": self.path,
            "title": self.title,
            "body": self.body,
            "url": self.url,
        }


def source_info(key: str, data: bytes | None) -> SourceInfo:
    """The source's label and base address from its ``_source.json`` (defaults: the folder name)."""
    if data is None:
        return SourceInfo(key, key, "")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocumentError(f"{key}/{SOURCE_FILE}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or set(doc) - {"label", "base_url"}:
        raise DocumentError(f"{key}/{SOURCE_FILE}: expected an object with 'label' and 'base_url'")
    label, base = doc.get("label", key), doc.get("base_url", "")
    if not isinstance(label, str) or not label.strip() or not isinstance(base, str):
        raise DocumentError(f"{key}/{SOURCE_FILE}: 'label' and 'base_url' must be text")
    return SourceInfo(key, label.strip(), base.strip())


def parse_document(data: bytes, path: str, source: SourceInfo) -> list[DocSection]:
    """Sections of one file (the format by its extension)."""
    where = f"{source.key}/{path}"
    if len(data) > MAX_FILE_BYTES:
        raise DocumentError(f"{where}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    lower = path.lower()
    page_url = _join(source.base_url, path)
    if lower.endswith((".html", ".htm")):
        text = _decode(data, where)
        page_url = _saved_url(text) or page_url
        raw = _html_sections(text)
    elif lower.endswith((".md", ".markdown")):
        raw = _markdown_sections(_decode(data, where))
    elif lower.endswith(".pdf"):
        raw = _pdf_sections(data, where)
    else:
        raise DocumentError(f"{where}: unknown file type (expected {', '.join(SUFFIXES)})")
    sections: list[DocSection] = []
    path_key = hashlib.sha1(path.encode("utf-8")).hexdigest()[:10]
    fallback_title = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for title, body, anchor in raw:
        body = _squash(body)
        if len(body) < MIN_BODY_CHARS:
            continue
        title = _squash(title)[:MAX_TITLE_CHARS] or fallback_title
        url = page_url + (f"#{anchor}" if anchor else "") if page_url else ""
        for start in range(0, len(body), MAX_BODY_CHARS):
            sections.append(
                DocSection(
                    f"doc-{source.key}-{path_key}-{len(sections) + 1}",
                    source.key,
                    source.label,
                    path,
                    title,
                    body[start : start + MAX_BODY_CHARS],
                    url,
                )
            )
    return sections


def _decode(data: bytes, where: str) -> str:
    for encoding in ("utf-8-sig", "cp932", "euc_jp"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentError(f"{where}: not UTF-8, Shift_JIS or EUC-JP text")


def _join(base: str, path: str) -> str:
    if not base:
        return ""
    return base.rstrip("/") + "/" + quote(path)


_BLANKS = re.compile(r"[ \t\u3000]+")
_MANY_LINES = re.compile(r"\n\s*\n+")


def _squash(text: str) -> str:
    lines = [_BLANKS.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    return _MANY_LINES.sub("\n", "\n".join(lines)).strip()


# --- HTML --------------------------------------------------------------------------------------

_SAVED_FROM = re.compile(r"<!--\s*saved from url=\(\d+\)(\S+?)\s*-->", re.IGNORECASE)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4"})
_SKIPPED = frozenset({"script", "style", "nav", "header", "footer", "noscript", "template", "aside", "form"})
_BREAKS = frozenset({"p", "div", "li", "br", "tr", "td", "th", "dt", "dd", "section", "article", "table"})


class _SectionParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, str, str]] = []
        self.canonical = ""
        self._title: list[str] = []
        self._body: list[str] = []
        self._anchor = ""
        self._heading: list[str] | None = None
        self._level = ""
        self._main = ""  # the h1 (page heading): sub-sections are titled "h1 › h2"
        self._skip = 0
        self._page_title: list[str] | None = None
        self.page_title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "link" and attr.get("rel", "").lower() == "canonical":
            self.canonical = attr.get("href", "")
        elif tag == "meta" and attr.get("property", "").lower() == "og:url" and not self.canonical:
            self.canonical = attr.get("content", "")
        if tag in _SKIPPED:
            self._skip += 1
        elif tag == "title":
            self._page_title = []
        elif tag in _HEADINGS and not self._skip:
            self._flush()
            self._heading = []
            self._level = tag
            self._anchor = attr.get("id", "")
        elif tag == "a" and self._heading is not None and not self._anchor:
            self._anchor = attr.get("id", "") or attr.get("name", "")
        elif tag in _BREAKS:
            self._body.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED and self._skip:
            self._skip -= 1
        elif tag == "title" and self._page_title is not None:
            self.page_title = "".join(self._page_title).strip()
            self._page_title = None
        elif tag in _HEADINGS and self._heading is not None:
            heading = "".join(self._heading).strip()
            if self._level == "h1" or not self._main:
                self._main = heading
                self._title = [heading]
            else:
                self._title = [f"{self._main} › {heading}"]
            self._heading = None
        elif tag in _BREAKS:
            self._body.append("\n")

    def handle_data(self, data: str) -> None:
        if self._page_title is not None:
            self._page_title.append(data)
        elif self._skip:
            return
        elif self._heading is not None:
            self._heading.append(data)
        else:
            self._body.append(data)

    def _flush(self) -> None:
        self.sections.append(("".join(self._title) or self.page_title, "".join(self._body), self._anchor))
        self._title, self._body, self._anchor = [], [], ""

    def close(self) -> None:
        super().close()
        self._flush()


def _html_sections(text: str) -> list[tuple[str, str, str]]:
    parser = _SectionParser()
    parser.feed(text)
    parser.close()
    return parser.sections


def _saved_url(text: str) -> str:
    parser = _SectionParser()
    parser.feed(text[:20000])  # the head is enough for the canonical address
    if parser.canonical.startswith(("http://", "https://")):
        return parser.canonical.split("#", 1)[0]
    match = _SAVED_FROM.search(text[:4000])
    return match.group(1).split("#", 1)[0] if match else ""


# --- Markdown ----------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"(\*\*|__|`|^\s*[-*+]\s+|^\s*>\s?)", re.MULTILINE)


def _slug(title: str) -> str:
    """GitHub-style heading anchor: lower case, spaces to '-', punctuation dropped (letters of any script kept)."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return quote(text.replace(" ", "-"))


def _markdown_sections(text: str) -> list[tuple[str, str, str]]:
    sections: list[tuple[str, str, str]] = []
    title, anchor = "", ""
    body: list[str] = []
    main = ""  # the top heading: sub-sections are titled "top › heading"
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        match = None if fence else _MD_HEADING.match(line)
        if match:
            sections.append((title, "\n".join(body), anchor))
            heading = match.group(2)
            title, anchor, body = heading, _slug(heading), []
            if len(match.group(1)) == 1 or not main:
                main = heading
            else:
                title = f"{main} › {heading}"
        else:
            body.append(line)
    sections.append((title, "\n".join(body), anchor))
    return [(_plain(t), _plain(b), a) for t, b, a in sections]


def _plain(markdown: str) -> str:
    return _MD_MARKS.sub("", _MD_LINK.sub(r"\1", markdown))


# --- PDF ---------------------------------------------------------------------------------------

# A line that opens a section in a printed newsletter: ■ ● ◆ 【見出し】, or a short numbered line.
_PDF_HEADING = re.compile(r"^\s*(?:[■□●◆◇▼▶★☆]|【[^】]{1,40}】\s*$|第?[0-9０-９]{1,2}[.．、章]\s*\S)")
_PDF_HEADING_MAX = 40


def _pdf_sections(data: bytes, where: str) -> list[tuple[str, str, str]]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise DocumentError(f"{where}: not a readable PDF ({exc})") from None
    sections: list[tuple[str, str, str]] = []
    for number, page in enumerate(pages, start=1):
        title = ""
        body: list[str] = []
        for line in page.splitlines():
            stripped = line.strip()
            if stripped and len(stripped) <= _PDF_HEADING_MAX and _PDF_HEADING.match(stripped):
                sections.append((title, _unwrap(body), f"page={number}"))
                title, body = stripped.lstrip("■□●◆◇▼▶★☆ 　"), []
            else:
                body.append(line)
        sections.append((title, _unwrap(body), f"page={number}"))
    return sections


def _unwrap(lines: list[str]) -> str:
    """Join a PDF's wrapped lines: no space between Japanese characters, a space between words."""
    out = ""
    for line in (raw.strip() for raw in lines):
        if not line:
            out += "\n"
        elif out and not out.endswith("\n") and (out[-1].isascii() and line[0].isascii()):
            out += " " + line
        else:
            out += line
    return out


def sections_of(files: Iterable[tuple[str, bytes]], source: SourceInfo) -> list[DocSection]:
    """All sections of one source's files ((path inside the source folder, bytes), in path order)."""
    out: list[DocSection] = []
    for path, data in sorted(files):
        out.extend(parse_document(data, path, source))
    return out
