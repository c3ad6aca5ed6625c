"""Papers a reader already knows, read from what they paste or upload: arXiv ids and URLs, a BibTeX file, a
Zotero export (RIS or CSV). Pure functions, text in and arXiv ids out: nothing here touches the database.

Only arXiv ids are taken from a file (titles, abstracts and authors come from the arXiv API later), so whatever
else a file holds (scripts in titles, LaTeX, megabytes of notes) is never stored. Each entry (a BibTeX entry, a
RIS record, a CSV row, a pasted line) counts once: with an arXiv id, or without one, and the reader is told
how many of each."""

import csv
import io
import re
from dataclasses import dataclass, field

from papers.text import ARXIV_NEW_ID, ARXIV_OLD_ID, arxiv_id_from

# A BibTeX library of a few thousand entries is well under a megabyte; past 2 MB it is not a reading list.
MAX_SEED_FILE_BYTES = 2 * 1024 * 1024
# A paste box holds a reading list, not a library: a few hundred URLs.
MAX_SEED_PASTE_CHARS = 40_000
# The ranking reads a reader's newest 200 ratings (papers.ranking.learned.MAX_RATINGS_USED): more seeds than
# that would only push each other out, and each one is an arXiv look-up.
MAX_SEED_PAPERS = 200

BIBTEX_ENTRY = re.compile(r"^\s*@\s*(\w+)\s*[{(]", re.MULTILINE)
BIBTEX_SKIPPED = frozenset({"comment", "string", "preamble"})
# The fields of a BibTeX entry that may name an arXiv paper, with what each holds; the value is braced or quoted
# (one level of inner braces, as in {arXiv preprint {arXiv:2401.12345}}).
BIBTEX_FIELD = re.compile(
    r"\b(eprint|arxivid|arxiv|url|doi|journal|note|howpublished)\s*=\s*(?:\{((?:[^{}]|\{[^{}]*\})*)\}|\"([^\"]*)\")",
    re.IGNORECASE,
)
BIBTEX_KINDS = {"eprint": "id", "arxivid": "id", "arxiv": "id", "url": "url", "doi": "doi"}
RIS_RECORD_START = re.compile(r"^TY  - ", re.MULTILINE)
RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  - ?(.*)$")
RIS_KINDS = {"UR": "url", "L1": "url", "L2": "url", "LK": "url", "DO": "doi"}
# Zotero's CSV export: the columns that can name an arXiv paper ("Extra" holds "arXiv: 2401.12345").
CSV_KINDS = {"Url": "url", "DOI": "doi", "Extra": "text", "Archive Location": "text", "Publication Title": "text"}
CSV_MARKERS = ("Item Type", "Key")
ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(\S+)", re.IGNORECASE)
ARXIV_MENTION = re.compile(r"arxiv\s*[:]\s*(\S+)", re.IGNORECASE)


class SeedError(ValueError):
    """The input as a whole can't be read; the message is shown to the reader as is."""


@dataclass
class Seeds:
    ids: list[str] = field(default_factory=list)  # distinct arXiv ids, without version, in the input's order
    entries: int = 0
    without_id: int = 0

    def add(self, found: list[str]) -> None:
        self.entries += 1
        if not found:
            self.without_id += 1
        for arxiv_id in found:
            if arxiv_id not in self.ids:
                self.ids.append(arxiv_id)

    def summary(self) -> str:
        """What the reader is told: "38 papers recognised; 3 of 40 entries had no arXiv id"."""
        recognised = f"{len(self.ids)} paper{'' if len(self.ids) == 1 else 's'} recognised"
        if not self.without_id:
            return recognised
        return f"{recognised}; {self.without_id} of {self.entries} entries had no arXiv id"


def arxiv_in(kind: str, value: str) -> str:
    """The arXiv id a field of this kind names: "id" (an eprint field), "url" (arxiv.org only), "doi" (arXiv's
    own DOIs, 10.48550/arXiv.X) or "text" (an "arXiv:X" mention); '' if none."""
    value = value.strip()
    if kind == "id":
        return arxiv_id_from(value)
    if kind == "url":
        return arxiv_id_from(value) if "arxiv.org/" in value.lower() else ""
    if kind == "doi":
        match = ARXIV_DOI.search(value)
        return arxiv_id_from(match.group(1)) if match else ""
    match = ARXIV_MENTION.search(value)
    return arxiv_id_from(match.group(1)) if match else ""


def _first(found: list[str]) -> list[str]:
    """An entry is one paper: the first id its fields name."""
    return [next(i for i in found if i)] if any(found) else []


def parse_bibtex(text: str) -> Seeds:
    seeds = Seeds()
    starts = list(BIBTEX_ENTRY.finditer(text))
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        if match.group(1).lower() in BIBTEX_SKIPPED:
            continue
        body = text[match.end() : following.start() if following else len(text)]
        found = [
            arxiv_in(BIBTEX_KINDS.get(name.lower(), "text"), braced or quoted)
            for name, braced, quoted in BIBTEX_FIELD.findall(body)
        ]
        seeds.add(_first(found))
    return seeds


def parse_ris(text: str) -> Seeds:
    seeds = Seeds()
    starts = [m.start() for m in RIS_RECORD_START.finditer(text)]
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        found = []
        for line in text[start:end].splitlines():
            if match := RIS_LINE.match(line.rstrip()):
                found.append(arxiv_in(RIS_KINDS.get(match.group(1), "text"), match.group(2)))
        seeds.add(_first(found))
    return seeds


def parse_zotero_csv(text: str) -> Seeds:
    seeds = Seeds()
    try:
        for row in csv.DictReader(io.StringIO(text)):
            seeds.add(_first([arxiv_in(kind, row.get(column) or "") for column, kind in CSV_KINDS.items()]))
    except csv.Error as exc:
        raise SeedError(f"This CSV file can't be read ({exc}). Export it again from Zotero as CSV.") from None
    return seeds


def parse_pasted(text: str) -> Seeds:
    """One entry per non-empty line: arXiv ids (2401.12345, 2401.12345v2, hep-th/9901001, arXiv:...) or
    arxiv.org abs/pdf URLs, several to a line if separated by spaces or commas."""
    seeds = Seeds()
    for line in text.splitlines():
        if line.strip():
            seeds.add([m.group(1) for pattern in (ARXIV_NEW_ID, ARXIV_OLD_ID) for m in pattern.finditer(line)])
    return seeds


def parse(text: str) -> Seeds:
    """Whichever of the formats the text is in."""
    head = text.lstrip()[:4096]
    if BIBTEX_ENTRY.search(head):
        return parse_bibtex(text)
    if RIS_RECORD_START.search(head):
        return parse_ris(text)
    first_line = head.split("\n", 1)[0]
    if all(marker in first_line for marker in CSV_MARKERS):
        return parse_zotero_csv(text)
    return parse_pasted(text)


def read_upload(data: bytes) -> Seeds:
    """An uploaded file's bytes: at most MAX_SEED_FILE_BYTES of UTF-8 text in one of the formats, naming at
    least one arXiv paper and at most MAX_SEED_PAPERS; else SeedError with what to do."""
    if len(data) > MAX_SEED_FILE_BYTES:
        size = MAX_SEED_FILE_BYTES // (1024 * 1024)
        raise SeedError(f"That file is larger than {size} MB. Export only the papers you want us to learn from.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SeedError("That file isn't UTF-8 text. Export it again as BibTeX, RIS or CSV in UTF-8.") from None
    if "\x00" in text:
        raise SeedError("That file isn't text. Upload a BibTeX (.bib), RIS (.ris) or Zotero CSV (.csv) file.")
    return checked(parse(text))


def checked(seeds: Seeds) -> Seeds:
    if not seeds.ids:
        if seeds.entries:
            raise SeedError(f"None of the {seeds.entries} entries had an arXiv id, so there was nothing to add.")
        raise SeedError("We found no papers in that. Paste arXiv ids or URLs, or upload a .bib, .ris or .csv file.")
    if len(seeds.ids) > MAX_SEED_PAPERS:
        raise SeedError(f"That names {len(seeds.ids)} papers; please choose at most {MAX_SEED_PAPERS}.")
    return seeds
