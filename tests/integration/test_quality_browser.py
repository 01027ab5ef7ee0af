"""Issue 4, in a real browser: the Data Docs and the quality summary, opened in headless Chromium with
the network off, render styled.

The pages are built as in ``test_quality_gate`` (one validation of a tiny silver.housing frame with one
warning, then the ``reports`` stage). Each page is screenshotted twice: as built, and from a copy
with every stylesheet deleted (``*.css`` files and inline ``<style>``). The styled shot must show the
stylesheets' own colours in quantity (Bootstrap's ``#e2e3e5`` panels, the report's ``#eef5f0`` table
headers...), the Font Awesome icons drawn from the vendored webfont, and differ clearly from the
unstyled shot, which shows none of them. The DOM Chromium ends up with references no network resource,
and a recording proxy sees no request from the pages while it does see a control page's CDN links.

Screenshots are kept under ``$GRIDLAKE_SHOTS`` (default ``/tmp/gridlake-shots``) for a human to look at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.test_quality_gate import SRC, housing, make_ctx
from tests.support import browser

pytestmark = [
    pytest.mark.spark,
    pytest.mark.browser,
    pytest.mark.skipif(browser.find_chromium() is None, reason=browser.SKIP_REASON),
]

SHOTS = Path(os.environ.get("GRIDLAKE_SHOTS", "/tmp/gridlake-shots"))


@dataclass(frozen=True)
class Look:
    """What a page styled by its stylesheets must show: colour (hex) -> minimum pixels, and a text."""

    colours: dict[str, int]
    text: str
    stylesheets: tuple[str, ...] = field(default=())


PAGES: dict[str, Look] = {
    # Bootstrap: #e2e3e5 .alert-secondary / list-group panels, #212529 body text
    "data_docs_index": Look({"e2e3e5": 10_000, "212529": 500}, "silver.housing",
                            ("vendor/bootstrap.min.css", "vendor/fontawesome.all.min.css")),
    # + #28a745 (.text-success) Font Awesome check-circle glyphs: only drawn if the vendored woff2 loads
    "data_docs_validation": Look({"e2e3e5": 20_000, "212529": 500, "28a745": 150}, "Expectation Validation Result",
                                 ("vendor/bootstrap.min.css", "vendor/fontawesome.all.min.css")),
    # the report's inline CSS: th #eef5f0, h2 #264, h1 border and pass-rate bars #2a6
    "quality_summary": Look({"eef5f0": 5_000, "226644": 1_000, "22aa66": 1_000}, "数据质量报告"),
}


@pytest.fixture(scope="module")
def quality_pages(spark, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """page name -> (the page's file, the root of the site it belongs to), built by the real stage."""
    from gridlake.config import load_settings
    from jobs.reports.quality import run

    settings = load_settings("local", data_root=tmp_path_factory.mktemp("quality-browser") / "data")
    ctx = make_ctx(spark, settings)
    ctx.manifest.record_files([{"source": "housing", "path": SRC, "sha256": "ab" * 32, "rows": 2}])
    ctx.audit("silver", "housing", housing(spark, [("H1", True, None, 60.0), ("H2", True, None, 99999.0)]))
    stats = run(ctx)
    index = Path(stats["data_docs"])
    site = index.parent
    validations = sorted(site.glob("validations/**/*.html"))
    assert len(validations) == 1, validations
    summary = Path(stats["report"])
    return {"data_docs_index": (index, site), "data_docs_validation": (validations[0], site),
            "quality_summary": (summary, summary)}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_styled_with_network_off(quality_pages, name, tmp_path):
    page, site = quality_pages[name]
    look = PAGES[name]
    styled = browser.read_png(browser.screenshot(page, SHOTS / f"{name}.png"))

    bare_site = browser.copy_without_css(site, tmp_path / "no-css")
    bare_page = bare_site / (page.name if site == page else page.relative_to(site))
    bare = browser.read_png(browser.screenshot(bare_page, SHOTS / f"{name}.no-css.png"))

    info = f"{name}: styled {styled.summary()} / without CSS {bare.summary()}"
    assert (styled.width, styled.height) == browser.WINDOW, info
    for hex_colour, minimum in look.colours.items():
        colour = bytes.fromhex(hex_colour)
        assert styled.colours.get(colour, 0) >= minimum, f"#{hex_colour} missing: {info}"
        assert bare.colours.get(colour, 0) < minimum / 10, f"#{hex_colour} not from the stylesheet: {info}"
    assert styled.fill_pixels() >= 20_000 and styled.fill_pixels() >= 5 * bare.fill_pixels(), info
    assert styled.distinct_colours >= 1.5 * bare.distinct_colours, info
    assert styled.diff_fraction(bare) >= 0.05, info


@pytest.mark.parametrize("name", list(PAGES))
def test_dom_loads_scripts_and_styles_from_files_only(quality_pages, name):
    page, _ = quality_pages[name]
    look = PAGES[name]
    dom = browser.dump_dom(page)
    assert look.text in dom
    refs = browser.page_refs(dom)
    assert refs.external() == [], f"{name} references the network: {refs.external()}"
    for ref in [*refs.scripts, *refs.stylesheets]:
        assert not browser.is_external(ref)
        path = browser.local_file(ref, page)
        assert path.is_file() and path.stat().st_size > 0, f"{name}: {ref} does not resolve to a file"
    for wanted in look.stylesheets:
        assert any(ref.endswith(wanted) for ref in refs.stylesheets), f"{name} does not link {wanted}"
    for ref in refs.stylesheets:
        css = browser.local_file(ref, page).read_text(encoding="utf-8")
        external = [u for u in browser.css_urls(css) if browser.is_external(u)]
        assert external == [], f"{ref} pulls {external}"
    if name == "quality_summary":  # self-contained: inline CSS, nothing linked
        assert refs.scripts == [] and refs.stylesheets == [] and refs.inline_css


def test_pages_make_no_network_request(quality_pages, tmp_path):
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.example.org/a.css">'
                       '</head><body><img src="http://cdn.example.org/x.png">control</body></html>',
                       encoding="utf-8")
    seen: dict[str, list[str]] = {}
    with browser.recording_proxy() as proxy:
        for name, (page, _) in [("control", (control, control)), *quality_pages.items()]:
            start = len(proxy.page_requests())
            browser.dump_dom(page, network=proxy.network)
            seen[name] = proxy.page_requests()[start:]
    hosts = {browser.request_host(line) for line in seen.pop("control")}
    assert hosts == {"cdn.example.org"}  # the recorder does see a page that goes out
    assert seen == {name: [] for name in PAGES}
