"""GX Data Docs for auditors, rendered fully offline into ``<settings.quality>/data_docs/``.

The docs are built only from the *sanitised* result files the gate wrote
(``<settings.quality>/<run_date>/*.json``) and the suites in ``expectations/``, in an
ephemeral GX context: no raw value can reach them. GX's page templates load Bootstrap,
jQuery, Font Awesome, bootstrap-table and Vega from CDNs; after building, every such link is
rewritten to the copies shipped in ``gridlake/quality/static/vendor`` (MIT / OFL licensed),
Vega (only used by profiling pages) is dropped, and any remaining external link is
neutralised, so the pages render with the network off.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.quality import gx
from gridlake.quality.suites import all_suites, build_suite

if TYPE_CHECKING:
    from gridlake.config import Settings

log = logging.getLogger(__name__)

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
SITE = "gridlake"

#: CDN resource (prefix) -> local file under static/vendor ("" = drop the tag).
CDN_MAP: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-filter-control.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome.all.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": "",
    "https://cdn.jsdelivr.net/npm/vega@5": "",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "",
}
_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"']*?logo-long\.png[^\"']*")
_TAG = re.compile(r"<(link|script)\b[^>]*?(?:href|src)=\"(https?://[^\"]+)\"[^>]*>(?:\s*</script>)?", re.I)
_HREF = re.compile(r"(href|src|action)=\"https?://[^\"]*\"", re.I)
_SRI = re.compile(r"\s+(integrity|crossorigin)=\"[^\"]*\"", re.I)
_URL = re.compile(r"https?://[^\s\"'<>)]+")


def _load_results(settings: Settings) -> list[tuple[dict[str, Any], Path]]:
    out = []
    for path in sorted(settings.quality.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/*.json")):
        try:
            out.append((json.loads(path.read_text(encoding="utf-8")), path))
        except (OSError, json.JSONDecodeError):
            log.warning("unreadable quality result %s skipped", path)
    return out


def build_data_docs(settings: Settings) -> Path:
    """Rebuild the Data Docs site from the stored sanitised results; return its index.html."""
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site_dir = settings.quality / "data_docs"
    if site_dir.exists():
        shutil.rmtree(site_dir)
    site_dir.mkdir(parents=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for name in list(context.variables.data_docs_sites or {}):
        context.delete_data_docs_site(name)  # the default site would write to a temp folder
    context.add_data_docs_site(SITE, {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    for spec in all_suites():
        context.suites.add(build_suite(spec))
    for doc, path in _load_results(settings):
        meta = doc.get("meta") or {}
        g = meta.get("gridlake") or {}
        run_time = meta.get("validation_time") or (meta.get("run_id") or {}).get("run_time")
        try:
            when = dt.datetime.fromisoformat(str(run_time))
        except ValueError:
            when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        result = expectationSuiteValidationResultSchema.load(doc)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=doc["suite_name"]),
            run_id=gx.RunIdentifier(run_name=str(g.get("run_id") or path.parent.name), run_time=when),
            batch_identifier=f"{g.get('layer', 'x')}.{g.get('table', 'x')}",
        )
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[SITE])
    make_offline(site_dir)
    return site_dir / "index.html"


def make_offline(site_dir: Path) -> int:
    """Point every CDN link of the HTML pages under ``site_dir`` at local copies; return pages rewritten."""
    static = site_dir / "static" / "vendor"
    if static.exists():
        shutil.rmtree(static)
    for src in sorted(VENDOR.rglob("*")):  # not copytree: it copies the repo's modes (0644/0755), not the umask's
        dst = static / src.relative_to(VENDOR)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    pages = 0
    for page in site_dir.rglob("*.html"):
        rel = Path(os.path.relpath(site_dir / "static", page.parent)).as_posix()
        html = page.read_text(encoding="utf-8")

        def tag(m: re.Match[str], rel: str = rel) -> str:
            local = next((v for k, v in CDN_MAP.items() if m.group(2).startswith(k)), "")
            if not local:
                return ""
            out = m.group(0).replace(m.group(2), f"{rel}/vendor/{local}")
            return _SRI.sub("", out)  # the local copies are not the CDN's bytes (no SRI on file://)

        html = _LOGO.sub(f"{rel}/images/logo-long.png", html)
        html = _TAG.sub(tag, html)
        html = _HREF.sub(lambda m: f'{m.group(1)}="#"', html)
        html = _URL.sub("", html)  # any external URL left in text or scripts
        page.write_text(html, encoding="utf-8")
        pages += 1
    return pages
