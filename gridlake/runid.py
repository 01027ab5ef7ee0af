"""Run ids: validated before anything turns one into a path.

A run id names the manifest file, the bronze staging folder, the alert file and rows in the
quality and manifest tables. It is therefore a plain name: a letter or digit, then letters,
digits, ``_ . : + -``, at most 128 characters, never ``..`` (so ``--run-id ..`` or
``--run-id ../../x`` is refused before anything is read, written or deleted).
"""

from __future__ import annotations

import re

from gridlake.errors import GridlakeError

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)


def validate_run_id(run_id: str) -> str:
    """``run_id`` unchanged when it is a plain name; else :class:`GridlakeError` saying what is allowed."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        shown = repr(run_id)[:80] if isinstance(run_id, str) else type(run_id).__name__
        raise GridlakeError(
            f"invalid run id {shown}: a run id becomes a file name, so it must match {RUN_ID_PATTERN} "
            "(letters, digits, _ . : + -, starting with a letter or digit) and contain no '..'; nothing was run"
        )
    return run_id


def safe_run_id(run_id: str) -> str:
    """The file-name form of a valid run id (``:`` becomes ``_``, as the manifests always named it)."""
    return validate_run_id(run_id).replace(":", "_")


def run_id_file_name(value: str | None, default: str = "unknown") -> str:
    """A file name for any id, valid or not (alerts must never fail): invalid characters become ``_``."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", value or default).strip(".") or default
    return re.sub(r"\.{2,}", "_", name)[:128]
