"""Headless Chromium for tests: screenshots and DOM dumps with the network off, and a tiny PNG reader.

``screenshot()`` and ``dump_dom()`` run the system Chromium (``/usr/bin/chromium``, or
``$GRIDLAKE_CHROMIUM``) as::

    chromium --headless=new --no-sandbox --disable-gpu --no-first-run --hide-scrollbars
             --force-device-scale-factor=1 --user-data-dir=<fresh temp dir>
             --proxy-server=127.0.0.1:9 --proxy-bypass-list='<-loopback>'
             --host-resolver-rules='MAP * ~NOTFOUND' --virtual-time-budget=3000
             --window-size=1280,900 --screenshot=<png> | --dump-dom  file:///...

Every host name (the proxy's included) resolves to NOTFOUND and everything, loopback too, is
sent to the discard port, so the page gets no byte from any network: what renders comes from
``file://`` only. ``RecordingProxy`` is the positive counterpart: a local proxy that records
every request Chromium tries, to prove that a page does not even *try* to go out.

``read_png()`` decodes Chromium's PNG with ``zlib`` only (no Pillow in the venv) into an
``Image`` with the few measures the "rendered styled" checks need.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

WINDOW = (1280, 900)
#: The network, effectively off: no name resolves, everything goes to the discard port.
NETWORK_OFF: tuple[str, ...] = (
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
BASE_FLAGS: tuple[str, ...] = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
    # Chromium's own services (translation offer on a Chinese page, updates, field trials) stay
    # quiet, so the recording proxy sees only what a page itself asks for.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=Translate,TranslateUI,OptimizationHints,MediaRouter",
    "--force-device-scale-factor=1",
)
#: Virtual time given to the page's scripts (bootstrap-table builds the Data Docs tables in JS).
BUDGET_MS = 3000
SKIP_REASON = "headless Chromium not found (/usr/bin/chromium missing; set GRIDLAKE_CHROMIUM to another binary)"


class ChromiumError(RuntimeError):
    """Chromium exited with an error or produced no output."""


def find_binary(env_var: str, default: str, names: tuple[str, ...]) -> str | None:
    """A tool's binary: ``$env_var`` (if executable), ``default``, or the first of ``names`` on PATH."""
    env = os.environ.get(env_var)
    if env:
        return env if os.access(env, os.X_OK) else None
    if os.access(default, os.X_OK):
        return default
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_chromium() -> str | None:
    """The Chromium binary to use: ``$GRIDLAKE_CHROMIUM``, ``/usr/bin/chromium``, or one on PATH."""
    return find_binary("GRIDLAKE_CHROMIUM", "/usr/bin/chromium", ("chromium", "chromium-browser", "google-chrome"))


def page_url(target: Path | str) -> str:
    """``file://`` URL of a path (URLs are passed through)."""
    if isinstance(target, str) and re.match(r"^[a-z][a-z0-9+.-]*://", target):
        return target
    return Path(target).resolve().as_uri()


def chromium_command(target: Path | str, action: Sequence[str], *, network: Sequence[str] = NETWORK_OFF,
                     window: tuple[int, int] = WINDOW, budget_ms: int | None = BUDGET_MS,
                     profile: str = "<tmp-profile>") -> list[str]:
    """The argv of one headless Chromium run (``action``: ``--screenshot=...`` or ``--dump-dom``)."""
    exe = find_chromium() or "/usr/bin/chromium"
    cmd = [exe, *BASE_FLAGS, f"--user-data-dir={profile}", *network]
    if budget_ms:
        cmd.append(f"--virtual-time-budget={budget_ms}")
    cmd += [f"--window-size={window[0]},{window[1]}", *action, page_url(target)]
    return cmd


def run_chromium(target: Path | str, action: Sequence[str], *, timeout: float = 120, **kw) -> str:
    """Run Chromium once with a throwaway profile; return its stdout (the DOM for ``--dump-dom``)."""
    if not find_chromium():
        raise ChromiumError(SKIP_REASON)
    with tempfile.TemporaryDirectory(prefix="gl-chromium-") as profile:
        cmd = chromium_command(target, action, profile=profile, **kw)
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-2000:]
        raise ChromiumError(f"chromium exited {proc.returncode}: {tail}")
    return proc.stdout.decode("utf-8", "replace")


def screenshot(target: Path | str, out: Path, **kw) -> Path:
    """PNG screenshot of ``target`` (a file or URL) at ``out``; network off unless ``network=`` says."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    run_chromium(target, [f"--screenshot={out}"], **kw)
    if not out.exists() or out.stat().st_size == 0:
        raise ChromiumError(f"chromium wrote no screenshot at {out}")
    return out


def dump_dom(target: Path | str, **kw) -> str:
    """The DOM of ``target`` after its scripts ran (``--dump-dom``), network off unless ``network=`` says."""
    dom = run_chromium(target, ["--dump-dom"], **kw)
    if "<html" not in dom.lower():
        raise ChromiumError("chromium dumped no DOM")
    return dom


# --- the page's references ----------------------------------------------------------------
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


@dataclass
class Refs:
    """Resources a DOM loads: scripts, stylesheets, images/fonts and CSS ``url()``s."""

    scripts: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    inline_css: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        css = [u for text in self.inline_css for u in css_urls(text)]
        return [*self.scripts, *self.stylesheets, *self.other, *css]

    def external(self) -> list[str]:
        """Every reference that would go to a network (``http(s)://``, ``//host``, ``ws://``...)."""
        return [u for u in self.all if is_external(u)]


class _RefParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs = Refs()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if a.get("style"):
            self.refs.inline_css.append(a["style"])
        if tag == "script" and a.get("src"):
            self.refs.scripts.append(a["src"])
        elif tag == "link" and a.get("href"):
            rel = a.get("rel", "").lower().split()
            (self.refs.stylesheets if "stylesheet" in rel else self.refs.other).append(a["href"])
        elif tag in ("img", "source", "iframe", "embed", "video", "audio", "input") and a.get("src"):
            self.refs.other.append(a["src"])
        elif tag == "object" and a.get("data"):
            self.refs.other.append(a["data"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.refs.inline_css.append(data)


def page_refs(dom: str) -> Refs:
    """The resources referenced by an HTML document (as dumped by Chromium)."""
    parser = _RefParser()
    parser.feed(dom)
    parser.close()
    return parser.refs


def css_urls(css: str) -> list[str]:
    """``url(...)`` and ``@import`` targets of a stylesheet text."""
    return [m.group(1) or m.group(2) for m in _CSS_URL.finditer(css)]


def is_external(ref: str) -> bool:
    """True for a reference that needs a network (anything but relative, ``file:``, ``data:``, ``#``)."""
    ref = ref.strip()
    if not ref or ref.startswith(("#", "data:", "file:", "about:", "blob:", "javascript:")):
        return False
    return bool(_EXTERNAL.match(ref)) or urlsplit(ref).scheme not in ("", "file")


def local_file(ref: str, page: Path) -> Path:
    """The file a relative reference of ``page`` points at."""
    parts = urlsplit(ref)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return (page.parent / unquote(parts.path)).resolve()


# --- a recording proxy: did the page *try* the network? ------------------------------------
#: Hosts Chromium itself calls (component updater, network time, account check), not the page.
CHROMIUM_SERVICE_HOSTS = re.compile(
    r"^(clients\d*\.google\.com|update\.googleapis\.com|accounts\.google\.com|redirector\.gvt1\.com"
    r"|[a-z0-9-]+\.gvt1\.com|optimizationguide-pa\.googleapis\.com|content-autofill\.googleapis\.com"
    r"|safebrowsing\.googleapis\.com|translate\.googleapis\.com|android\.clients\.google\.com)$"
)


class RecordingProxy:
    """A local HTTP proxy that answers 502 to everything and records each request line."""

    def __init__(self) -> None:
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def network(self) -> tuple[str, ...]:
        """Chromium flags routing everything through this proxy; no other name resolves."""
        return (f"--proxy-server=http://127.0.0.1:{self.port}", "--proxy-bypass-list=<-loopback>",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    line = conn.recv(8192).split(b"\r\n", 1)[0].decode("latin-1")
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    continue
                with self._lock:
                    self.requests.append(line)

    def close(self) -> None:
        """Stop accepting."""
        self._srv.close()

    def page_requests(self) -> list[str]:
        """Recorded request lines, except Chromium's own service calls."""
        with self._lock:
            lines = list(self.requests)
        return [line for line in lines if not CHROMIUM_SERVICE_HOSTS.match(request_host(line))]


def request_host(line: str) -> str:
    """Host of a proxy request line (``GET http://h/p HTTP/1.1`` or ``CONNECT h:443 HTTP/1.1``)."""
    parts = line.split()
    if len(parts) < 2:
        return ""
    target = parts[1]
    if parts[0].upper() == "CONNECT":
        return target.rsplit(":", 1)[0].lower()
    return (urlsplit(target).hostname or "").lower()


@contextmanager
def recording_proxy() -> Iterator[RecordingProxy]:
    """A ``RecordingProxy`` for the duration of the block."""
    proxy = RecordingProxy()
    try:
        yield proxy
    finally:
        proxy.close()


# --- stripping the styles, for the "is it the CSS?" comparison ---------------------------------
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style>", re.I | re.S)


def copy_without_css(site: Path, dest: Path) -> Path:
    """Copy a static site to ``dest`` with every ``*.css`` file deleted and inline ``<style>`` removed."""
    if dest.exists():
        shutil.rmtree(dest)
    if site.is_file():
        dest.mkdir(parents=True)
        shutil.copy2(site, dest / site.name)
    else:
        shutil.copytree(site, dest)
    for css in list(dest.rglob("*.css")):
        css.unlink()
    for page in dest.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        page.write_text(_STYLE_BLOCK.sub("", text), encoding="utf-8")
    return dest


# --- PNG --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    """An 8-bit RGB raster (alpha composited on white)."""

    width: int
    height: int
    rgb: bytes

    @cached_property
    def colours(self) -> Counter[bytes]:
        """Pixel count per colour (3-byte keys)."""
        rgb = self.rgb
        return Counter(rgb[i:i + 3] for i in range(0, len(rgb), 3))

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def distinct_colours(self) -> int:
        return len(self.colours)

    @property
    def non_white_fraction(self) -> float:
        """Share of pixels that are not pure white."""
        return 1.0 - self.colours.get(b"\xff\xff\xff", 0) / self.pixels

    def fill_pixels(self, min_light: int = 200) -> int:
        """Pixels of the most frequent light, non-white colour: a CSS background fill, not text."""
        light = [(n, c) for c, n in self.colours.items() if c != b"\xff\xff\xff" and min(c) >= min_light]
        return max(light)[0] if light else 0

    def chromatic_pixels(self, spread: int = 48) -> int:
        """Pixels whose channels differ by at least ``spread`` (coloured, not grey)."""
        return sum(n for c, n in self.colours.items() if max(c) - min(c) >= spread)

    def diff_fraction(self, other: Image) -> float:
        """Share of pixels that differ from ``other`` (same size)."""
        if (self.width, self.height) != (other.width, other.height):
            raise ValueError("images of different sizes")
        a, b = self.rgb, other.rgb
        diff = sum(1 for i in range(0, len(a), 3) if a[i:i + 3] != b[i:i + 3])
        return diff / self.pixels

    def summary(self) -> dict[str, float | int]:
        """The measures, for assertion messages."""
        return {"distinct_colours": self.distinct_colours, "non_white": round(self.non_white_fraction, 4),
                "fill": self.fill_pixels(), "chromatic": self.chromatic_pixels()}


def read_png(path: Path) -> Image:
    """Decode an 8-bit, non-interlaced PNG (grey, grey+alpha, RGB or RGBA) with zlib only."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, chunks = 8, []
    width = height = depth = ctype = interlace = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    raw = zlib.decompress(b"".join(chunks))
    bpp, stride = channels, width * channels
    prev = bytearray(stride)
    out = bytearray()
    i = 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise ValueError(f"bad PNG filter {kind}")
        out += line
        prev = line
    return Image(width, height, _to_rgb(bytes(out), channels))


def _to_rgb(px: bytes, channels: int) -> bytes:
    if channels == 3:
        return px
    if channels == 1:
        return bytes(v for g in px for v in (g, g, g))
    rgb = bytearray()
    for i in range(0, len(px), channels):
        *colour, alpha = px[i:i + channels]
        if channels == 2:
            colour = colour * 3
        rgb += bytes((v * alpha + 255 * (255 - alpha)) // 255 for v in colour)
    return bytes(rgb)
