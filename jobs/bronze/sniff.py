"""Looking at a delivered CSV file's bytes before reading it: is it text at all, and in which encoding?

Two hostile deliveries are decided here, in plain Python, from the bytes alone:

* **binary content** - a ZIP/XLSX, legacy XLS, PDF, image or archive renamed ``.csv``,
  or plain garbage: a known magic number, NUL bytes or a high share of control
  characters in the first 64 KiB reject the file (reason ``BINARY_CONTENT``);
* **wrong declared encoding** - ``sources.yaml`` says ``gb18030`` but the file is
  valid UTF-8 with non-ASCII text (an office switched systems), or it says
  ``utf-8`` but the file is not UTF-8 and is valid ``gb18030``. A Chinese text in
  one of these encodings is practically never valid in the other over a whole file
  (UTF-8 Chinese decodes as ``gb18030`` only byte pair by byte pair, so the check
  is "valid UTF-8 with non-ASCII bytes" in one direction and "invalid UTF-8 but
  valid gb18030" in the other). The reader then tries the detected encoding first
  and keeps it only when the header maps to the source's columns; the file loads
  with a ``ENCODING_MISMATCH`` note naming both encodings.

A UTF-16 byte-order mark makes the file UTF-16 (decoded, not "binary"). NUL bytes
that only start after at least one complete text line are a damaged tail (a transfer
cut off or padded with zeros), not a binary file: the reader loads the rows before it.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 64 * 1024
CHUNK_BYTES = 1 << 20
CONTROL_SHARE = 0.01  # more than 1% control characters in the sample: not a text file
UNDECODABLE_SHARE = 0.05  # more than 5% of the sample undecodable in every candidate: not a text file

# Magic numbers of files that are sometimes renamed to .csv by mistake.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an XLSX workbook renamed .csv?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 file (a legacy .xls workbook renamed .csv?)"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
)
_CONTROL = frozenset(set(range(0x00, 0x09)) | {0x0B} | set(range(0x0E, 0x20)) | {0x7F})
_UTF8 = ("utf-8", "utf-8-sig")


def family(encoding: str) -> str:
    """``utf-8`` for both UTF-8 spellings of sources.yaml, else the encoding itself."""
    return "utf-8" if encoding in _UTF8 else encoding


@dataclass(frozen=True)
class Sniffed:
    """What the bytes say: ``binary`` (why it is not text) or the ``encoding`` to read with first."""

    declared: str
    encoding: str  # the encoding family to try first (utf-8 | gb18030)
    binary: str | None = None
    evidence: str | None = None  # why ``encoding`` differs from the declaration

    @property
    def mismatch(self) -> bool:
        return family(self.declared) != self.encoding


def _valid(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes strictly in ``encoding`` (streamed, stops at the first error)."""
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as fh:
            while block := fh.read(CHUNK_BYTES):
                dec.decode(block)
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _has_non_ascii(path: Path) -> bool:
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            if not block.isascii():
                return True
    return False


def _undecodable_share(sample: bytes, encoding: str) -> float:
    text = codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(sample)
    bad = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    return bad / max(len(sample), 1)


def binary_reason(sample: bytes) -> str | None:
    """Why the first bytes of a file are not a text file, or None."""
    for magic, what in MAGIC:
        if sample.startswith(magic):
            return f"the file is {what}, not a CSV text file"
    if b"\x00" in sample:
        return f"NUL bytes in the first {len(sample)} bytes: not a text file"
    control = sum(1 for b in sample if b in _CONTROL)
    if sample and control / len(sample) > CONTROL_SHARE:
        return f"{control} control characters in the first {len(sample)} bytes: not a text file"
    if sample and min(_undecodable_share(sample, e) for e in ("utf-8", "gb18030")) > UNDECODABLE_SHARE:
        return f"the first {len(sample)} bytes are neither UTF-8 nor gb18030 text"
    return None


def damaged_tail_at(sample: bytes) -> int | None:
    """Offset of the first NUL byte when text lines come before it (a damaged tail), else None."""
    nul = sample.find(b"\x00")
    if nul <= 0:
        return None
    head = sample[:nul]
    last_break = max(head.rfind(b"\n"), head.rfind(b"\r"))
    if last_break < 0 or binary_reason(head[: last_break + 1]) is not None:
        return None
    return nul


def sniff(path: str | Path, declared: str) -> Sniffed:
    """Decide whether ``path`` is text and which encoding to try first (see the module docstring)."""
    path = Path(path)
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) and not sample.startswith(b"\xff\xfe\x00\x00"):
        try:
            sample[2: len(sample) - len(sample) % 2].decode("utf-16-le" if sample[0] == 0xFF else "utf-16-be")
        except UnicodeDecodeError:
            pass
        else:
            return Sniffed(declared, "utf-16", evidence="a UTF-16 byte-order mark")
    tail = damaged_tail_at(sample)
    why = binary_reason(sample if tail is None else sample[:tail])
    if why:
        return Sniffed(declared, family(declared), binary=why)
    fam = family(declared)
    if fam == "gb18030":
        if _has_non_ascii(path) and _valid(path, "utf-8"):
            return Sniffed(declared, "utf-8", evidence="the file is valid UTF-8 with non-ASCII text")
    elif fam == "utf-8":
        if not _valid(path, "utf-8") and _valid(path, "gb18030"):
            return Sniffed(declared, "gb18030", evidence="the file is not valid UTF-8 and is valid gb18030")
    return Sniffed(declared, fam)
