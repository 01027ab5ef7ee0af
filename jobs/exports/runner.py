"""Stage ``exports``: the officers' lists with write-audit-publish.

:func:`run` writes tonight's files (:func:`jobs.exports.writer.run`) into a private staging folder,
seeded with the night's published files so unchanged files stay unchanged; every file written is
scanned for raw personal data (:mod:`gridlake.privacy_scan`); only then is the night's folder moved
into place. A hit stops publication (:func:`gridlake.privacy_gate.stop_publication`) and the staged
files are deleted.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.config import Settings
from gridlake.privacy_gate import known_pii, stop_publication
from gridlake.privacy_scan import scan
from gridlake.runid import safe_run_id

if TYPE_CHECKING:
    from gridlake.context import RunContext


class StagedSettings(Settings):
    """Settings whose ``exports`` folder is a staging folder (everything else unchanged)."""

    staged_exports: str = ""

    @property
    def exports(self) -> Path:
        return Path(self.staged_exports)


def staging_dir(settings: Settings, run_id: str) -> Path:
    """Where a run's exports are written before the scan: private to the service user."""
    return settings.data / "_staging" / "exports" / safe_run_id(run_id)


def _export_targets(night_dir: Path) -> list[tuple[str, Path]]:
    out = []
    for f in sorted(night_dir.rglob("*")):
        if f.is_file():
            out.append(("xlsx" if f.suffix == ".xlsx" else "text", f))
    return out


def _swap_into_place(staged: Path, final: Path) -> None:
    """Replace ``final`` (a night's folder) by ``staged``: two renames on one file system."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.rename(final, old)
    os.rename(staged, final)
    if old.exists():
        shutil.rmtree(old)


def run(ctx: RunContext) -> dict[str, Any]:
    """Stage ``exports`` with write-audit-publish: stage, scan, then move the night's folder into place."""
    from jobs.exports import writer as exports

    settings = ctx.settings
    root = staging_dir(settings, ctx.run_id)
    if root.exists():
        shutil.rmtree(root)  # an earlier attempt's staging
    root.mkdir(parents=True, mode=0o700)
    final = settings.exports / ctx.date_str
    staged = root / ctx.date_str
    if final.parent.exists():  # a run killed between the two renames of a swap left the old folder
        for left in final.parent.glob(f".{final.name}.old-*"):
            shutil.rmtree(left, ignore_errors=True)
    if final.exists():  # seeded with what is published: unchanged files are not rewritten
        shutil.copytree(final, staged, copy_function=shutil.copy2)
    staged_settings = StagedSettings.model_validate({**dict(settings), "staged_exports": str(root)})
    staged_ctx = dataclasses.replace(ctx, settings=staged_settings)
    try:
        stats = exports.run(staged_ctx)
        if not staged.exists():  # nothing to export tonight
            return stats
        report = scan(settings, targets=_export_targets(staged), known=known_pii(ctx))
        for f in report.findings:
            f.path = str(Path(f.path).relative_to(root))
        if report.findings:
            stop_publication(ctx, f"exports/{ctx.date_str}", report.findings)
        _swap_into_place(staged, final)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # staged files with a hit never stay on disk
    ctx.manifest.doc.setdefault("privacy_gate", {})[f"exports/{ctx.date_str}"] = {
        "passed": True, "files_scanned": report.files_scanned, "findings": []}
    stats["index"] = str(final / "index.json")
    ctx.manifest.doc.setdefault("links", {})["exports_index"] = stats["index"]
    stats["privacy_files_scanned"] = report.files_scanned
    return stats
