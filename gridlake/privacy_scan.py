"""A scanner that proves personal data stays in its place.

It walks everything that leaves the raw layers — gold tables, exports (XLSX and CSV),
quality output, reports, run manifests, alerts and logs — and looks for:

- any 18-digit resident ID number with a valid GB 11643 checksum, or a legacy 15-digit one
  that upgrades to a known ID;
- any known raw phone number (11-digit mobile) and any known full name, where the known
  values are read from the silver tables (which legitimately hold them).

It reports locations and kinds only, never the values it found.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import xml.etree.ElementTree as ET  # noqa: N817 (the usual name)
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gridlake.config import Settings, load_settings
from gridlake.ids import check_digit
from gridlake.storage import open_delta, require_local

log = logging.getLogger(__name__)

# An ID number or a mobile number standing alone (no digit either side). Each pattern begins with the
# character it needs (``[1-9]``, ``1``) and looks behind it afterwards (``(?<![0-9].)``: the character
# before it is no digit), the same matches as a leading ``(?<![0-9])``: Python's engine then skips to the
# places such a character stands instead of trying the assertion at every position of the text (a
# mobile number found 8 times as fast in a district's texts, an ID number 1.2-1.5 times).
_ID18 = re.compile(r"[1-9](?<![0-9].)[0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}"
                   r"[0-9Xx](?![0-9])")
_PHONE = re.compile(r"1(?<![0-9].)[3-9][0-9]{9}(?![0-9])")
# A digest or key written in hex (the HMAC pseudonyms, 64 characters; discrepancy ids, 16): 16 or more hex
# digits, at least one of them a letter, standing alone (no letter or digit either side). About one
# 64-character digest in 300 holds an 11-digit run that reads as a mobile number; a district night's
# million person keys then "leaked" a few known phones by chance (issue 22's district bench at 3e952c6,
# a different pseudonym key from the earlier runs). A number inside such a token is not searched.
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Za-z])")
TEXT_SUFFIXES = {".json", ".html", ".csv", ".txt", ".log", ".md", ".yaml", ".yml", ".svg", ".js", ".css"}


@dataclass
class Finding:
    path: str
    kind: str  # id_number | phone | name
    count: int


@dataclass
class ScanReport:
    files_scanned: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def leaks(self) -> int:
        return sum(f.count for f in self.findings)

    def to_dict(self) -> dict:
        return {
            "files_scanned": self.files_scanned,
            "leaks": self.leaks,
            "findings": [f.__dict__ for f in self.findings],
        }


def valid_id18(s: str) -> bool:
    s = s.upper()
    return len(s) == 18 and check_digit(s[:17]) == s[17]


@dataclass
class KnownPII:
    """Raw values to look for (from silver); only held in memory during a night's run (the one read from silver
    is kept between the night's stages and forgotten when it ends: :func:`forget_known_pii`)."""

    phones: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    # House codes are not personal; a code that happens to look like an ID number is not a leak.
    house_codes: set[str] = field(default_factory=set)
    _index: tuple[frozenset[str], NameIndex | None] | None = field(default=None, init=False, repr=False, compare=False)

    def name_pattern(self) -> NameIndex | None:
        """A finder of the known names (at least 2 characters, masked ones excluded), or None without names;
        built again only when the names differ from those it was built for (a district's are half a million)."""
        if self._index is None or self._index[0] != self.names:
            names = {n for n in self.names if n and len(n) >= 2 and "*" not in n}
            self._index = (frozenset(self.names), NameIndex(names) if names else None)
        return self._index[1]


class NameIndex:
    """Leftmost-longest, non-overlapping occurrences of known names in a text.

    What a regex alternation of every name would find, in time linear in the text whatever the
    number of names (a district holds tens of thousands): candidate positions are the characters
    names start with, then one set lookup per name length.
    """

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.lengths = sorted({len(n) for n in names}, reverse=True)
        self.starts = re.compile("[" + "".join(sorted({re.escape(n[0]) for n in names})) + "]")

    def findall(self, text: str) -> list[str]:
        found: list[str] = []
        pos = 0
        while True:
            m = self.starts.search(text, pos)
            if m is None:
                return found
            i = m.start()
            hit = next((text[i:i + n] for n in self.lengths if text[i:i + n] in self.names), None)
            if hit is None:
                pos = i + 1
            else:
                found.append(hit)
                pos = i + len(hit)


def scan_text(text: str, path: str, known: KnownPII, name_re: NameIndex | re.Pattern[str] | None) -> list[Finding]:
    """Findings (kinds and counts only) in one text."""
    out: list[Finding] = []
    numbers = _HEX_TOKEN.sub(" ", text) if _HEX_TOKEN.search(text) else text  # names are not in hex tokens
    ids = [m for m in _ID18.findall(numbers) if valid_id18(m) and m not in known.house_codes]
    if ids:
        out.append(Finding(path, "id_number", len(ids)))
    phones = [m for m in _PHONE.findall(numbers) if not known.phones or m in known.phones]
    if phones:
        out.append(Finding(path, "phone", len(phones)))
    if name_re is not None:
        names = name_re.findall(text)
        if names:
            out.append(Finding(path, "name", len(names)))
    return out


_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _item_text(item: ET.Element) -> str:
    """A string item's text (``<si>``, ``<is>``): its ``<t>`` runs, rich-text runs included, joined."""
    return "".join(t.text or "" for t in item.iter(f"{_SHEET_NS}t"))


def _xlsx_text(path: Path) -> str:
    """Every cell of every worksheet of a workbook, a line per row, cells joined by tabs: the values
    openpyxl reads back (shared and inline strings, numbers as ``int`` or ``float``, booleans), read from
    the package's XML directly (at district scale (seed 20141) both nights' 3,440 lists in 3.5 s where
    openpyxl's reader took 19.1 s, the same text, ``tests/unit/test_privacy_scan.py``). A part
    that does not parse raises: the scan fails closed."""
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        shared = []
        if "xl/sharedStrings.xml" in names:
            shared = [_item_text(si) for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(f"{_SHEET_NS}si")]
        sheets = sorted((n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml")),
                        key=lambda n: (len(n), n))
        parts = []
        for sheet in sheets:
            rows = [[(_column(c.get("r")), _cell_text(c, shared)) for c in row.iter(f"{_SHEET_NS}c")]
                    for row in ET.fromstring(z.read(sheet)).iter(f"{_SHEET_NS}row")]
            width = max((col for cells in rows for col, _ in cells), default=0)
            for cells in rows:     # an empty cell is not written: its column is left blank, as openpyxl does
                line = [""] * width
                for i, (col, text) in enumerate(cells):
                    line[(col or i + 1) - 1] = text
                parts.append("\t".join(line))
    return "\n".join(parts)


def _column(ref: str | None) -> int:
    """The column number of a cell reference (``D4`` -> 4); 0 without one."""
    n = 0
    for ch in ref or "":
        if not ch.isalpha():
            break
        n = n * 26 + ord(ch.upper()) - 64
    return n


def _cell_text(cell: ET.Element, shared: list[str]) -> str:
    kind = cell.get("t")
    if kind == "inlineStr":
        item = cell.find(f"{_SHEET_NS}is")
        return "" if item is None else _item_text(item)
    v = cell.find(f"{_SHEET_NS}v")
    if v is None or v.text is None:
        return ""
    if kind == "s":
        return shared[int(v.text)]
    if kind in (None, "n"):     # as openpyxl casts a number
        return str(float(v.text)) if any(ch in v.text for ch in ".Ee") else str(int(v.text))
    if kind == "b":
        return str(v.text.strip() == "1")
    return v.text


def _delta_texts(table_dir: Path) -> Iterator[str]:
    """String content of the Parquet files of one Delta table (all versions, as files on disk)."""
    import pyarrow.parquet as pq

    for pf in sorted(table_dir.rglob("*.parquet")):
        table = pq.read_table(pf)
        for col in table.column_names:
            values = table.column(col).to_pylist()
            yield "\n".join(json.dumps(v, ensure_ascii=False, default=str) for v in values if v is not None)


def iter_scan_targets(settings: Settings) -> Iterator[tuple[str, Path]]:
    """(kind, path) of everything outside bronze and silver that must be free of personal data.

    The lake's tables are scanned file by file, every version: a lake on object storage is refused
    (:func:`gridlake.storage.require_local`) rather than silently left out of the scan."""
    require_local(settings, "the privacy scan of the lake's files (gridlake scan-privacy)")
    data = settings.data
    lake = Path(settings.lake)
    for layer in ("gold", "quality", "_runs"):
        base = lake / layer
        if base.exists():
            for table in sorted(p for p in base.iterdir() if p.is_dir()):
                yield "delta", table
            for f in sorted(base.glob("*.json")):
                yield "text", f
    for folder in (settings.exports, settings.quality, settings.reports, data / "alerts", data / "logs",
                   settings.airflow_home / "logs", settings.airflow_home / "demo-logs"):
        if folder.exists():
            for f in sorted(folder.rglob("*")):
                if not f.is_file() or "_delta_log" in f.parts:
                    continue
                if f.suffix == ".xlsx":
                    yield "xlsx", f
                elif f.suffix in TEXT_SUFFIXES or f.suffix == "" and f.stat().st_size < 50_000_000:
                    yield "text", f


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")


def place_names(names: set[str], addresses: Iterable[str | None]) -> set[str]:
    """The ``names`` written inside a registered address: every occurrence, overlapping ones included.

    A district's registry spells its streets, communities, roads, complexes and villages; a resident
    whose full name is also a piece of one of them (黄贝, 沙头, 岗厦) cannot be told from the place in a
    text, so the gate does not look for that name: it would stop every list holding the address (seed
    20141, district: 7 of 476,063 known names, such as 黄贝 in 黄贝岭)."""
    lengths = sorted({len(n) for n in names if len(n) >= 2})
    runs = {r for a in addresses if a for r in _CJK_RUN.findall(a)}
    found: set[str] = set()
    for run in runs:
        for i in range(len(run) - 1):
            for n in lengths:
                if i + n > len(run):
                    break
                if run[i:i + n] in names:
                    found.add(run[i:i + n])
    return found


#: silver's tables and the columns whose raw values the scans look for
SILVER_PII_COLUMNS = (("declarations", ("phone", "name")), ("rentals", ("landlord_phone", "landlord_name")),
                      ("mediation_cases", ("parties", "persons")), ("police_incidents", ("persons",)),
                      ("family_planning", ("persons",)), ("housing", ("house_code", "address_raw", "address_norm")))
# the last set read per silver folder, with the versions it was read at (see known_pii_from_silver)
_KNOWN: dict[str, tuple[tuple[tuple[str, str, int], ...], KnownPII]] = {}
_KNOWN_LOCK = threading.Lock()


def known_pii_from_silver(settings: Settings) -> KnownPII:
    """Phones and names held in silver's current versions, read with ``deltalake`` (no JVM).

    Only committed files are read: a data file left by a killed write (possibly empty or cut off)
    belongs to no version and holds nothing the lake publishes. A lake on ``s3a://`` is read with
    the configured storage options; another remote scheme raises (the gate fails closed).

    The set is read again only when one of the tables moved to another version (or was created again): the
    stages of a night run in one process (``gridlake run``) read the same versions, and a district's set took
    4-5 s to read each time. The versions are those of the tables opened here, so the set is always the one
    these versions hold.
    It is kept only until the night's stages end (:func:`forget_known_pii`)."""
    opened = [(table, cols, open_delta(settings, settings.table_path("silver", table)))
              for table, cols in SILVER_PII_COLUMNS]
    # a table's id (Delta's, new for a table created again at the same place) and version
    versions = tuple((table, "", -1) if dt_ is None else (table, str(dt_.metadata().id), int(dt_.version()))
                     for table, _, dt_ in opened)
    where = settings.table_path("silver", "")
    with _KNOWN_LOCK:
        held = _KNOWN.get(where)
    if held is not None and held[0] == versions:
        log.info("privacy scan: known names and phones of silver's same versions, read before")
        return held[1]
    known = _read_known(opened)
    with _KNOWN_LOCK:
        _KNOWN.clear()   # one lake's set held at a time
        _KNOWN[where] = (versions, known)
    return known


def forget_known_pii() -> None:
    """Drop the set :func:`known_pii_from_silver` keeps (:func:`gridlake.pipeline.run_night` calls this when a
    night's stages end, however they end)."""
    with _KNOWN_LOCK:
        _KNOWN.clear()


def _distinct(column) -> list:
    """The distinct values of a ``pyarrow`` column that are neither null nor empty (computed in Arrow: a district's
    1.25 M declarations repeat their names, and a value's Python object is made once, not once per row)."""
    import pyarrow.compute as pc

    return [v for v in pc.unique(column).to_pylist() if v]


def known_from_tables(tables: Iterable) -> tuple[KnownPII, set[str]]:
    """The known names, phones and house codes in silver's PII columns (``pyarrow`` tables of
    :data:`SILVER_PII_COLUMNS`' columns), and the registry's address texts: ``persons`` lists give their
    members' names and phones; a ``house_code`` column the codes; ``address_*`` the addresses; a column named
    for a phone the phones; any other column names, several to a value separated by ``;`` or ``；``."""
    import pyarrow.compute as pc

    known = KnownPII()
    addresses: set[str] = set()
    for t in tables:
        for col in t.column_names:
            column = t.column(col)
            if col == "persons":   # enforcement records' persons: names and phones by position
                members = pc.list_flatten(column)
                known.phones.update(str(v) for v in _distinct(pc.struct_field(members, "phone")))
                known.names.update(str(v).strip() for v in _distinct(pc.struct_field(members, "name")))
            elif col == "house_code":
                known.house_codes.update(str(v) for v in _distinct(column))
            elif col.startswith("address_"):
                addresses.update(str(v) for v in _distinct(column))
            elif "phone" in col:
                known.phones.update(str(v) for v in _distinct(column))
            else:
                for v in _distinct(column):
                    known.names.update(p.strip() for p in str(v).replace("；", ";").split(";") if p.strip())
    return known, addresses


def _read_known(opened: list) -> KnownPII:
    tables = []
    for _table, cols, dt_ in opened:
        if dt_ is None:
            continue
        present = [c for c in cols if c in dt_.schema().to_arrow().names]
        if present:
            tables.append(dt_.to_pyarrow_table(columns=present))
    known, addresses = known_from_tables(tables)
    places = place_names(known.names, addresses)
    known.names -= places
    log.info("privacy scan: %d known names, %d more left out as pieces of registered addresses",
             len(known.names), len(places))
    return known


def scan(settings: Settings, targets: Iterable[tuple[str, Path]] | None = None,
         known: KnownPII | None = None) -> ScanReport:
    """Scan every target; return kinds and counts of anything that looks like raw personal data."""
    known = known if known is not None else known_pii_from_silver(settings)
    name_re = known.name_pattern()
    report = ScanReport()
    for kind, path in targets if targets is not None else iter_scan_targets(settings):
        if kind == "delta":
            texts: Iterable[str] = _delta_texts(path)
        elif kind == "xlsx":
            texts = [_xlsx_text(path)]
        else:
            texts = [path.read_text(encoding="utf-8", errors="replace")]
        report.files_scanned += 1
        for text in texts:
            report.findings.extend(scan_text(text, str(path), known, name_re))
    return report


def cmd_scan_privacy(args: argparse.Namespace) -> int:
    """``gridlake scan-privacy``: exit 1 when any raw personal data is found outside bronze/silver."""
    settings = load_settings(args.profile, args.data)
    report = scan(settings)
    out = settings.reports / "privacy_scan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    log.info("scanned %d files/tables: %d leaks; report %s", report.files_scanned, report.leaks, out)
    for f in report.findings[:50]:
        log.error("leak: %s in %s (%d)", f.kind, f.path, f.count)
    return 1 if report.leaks else 0
