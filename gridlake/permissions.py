"""File permissions of everything gridlake writes: readable by the service user only.

The data root holds raw personal data (landing, bronze, silver), pseudonymised gold,
officers' exports, quality results, reports and run manifests. All of it is written
with **directories 0700 and files 0600** (no group or other access at all; an officer
gets an export through the distribution channel, not by reading the lake):

* the process umask is set to :data:`SERVICE_UMASK` (``077``) at every entry point
  (``gridlake`` CLI ``main()``, ``gridlake/submit.py`` ``main()``) and in
  :func:`gridlake.spark.get_spark` before the JVM starts, so Python writes, pyarrow
  staging files, Airflow's files and the JVM's own files (Derby, block manager) inherit it;
* Hadoop's local file system sets the permission of every file and directory it creates
  from its own setting, not from the process umask, so the Spark session also gets
  ``spark.hadoop.fs.permissions.umask-mode=077`` (:data:`HADOOP_UMASK`) - Delta logs,
  Parquet files and ``.crc`` files come out 0600, their folders 0700;
* writers that chmod explicitly (exports, the district report, the local key file) use
  0600/0700 too;
* the data root itself is made 0700 (and tightened, with a warning, when it was wider),
  so even a file created with a looser mode below it cannot be reached by another user.

A lake on object storage (``s3a://``...) is protected by the bucket's policies, not by
these modes.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from gridlake.faults import fault_point

if TYPE_CHECKING:
    from gridlake.config import Settings

log = logging.getLogger(__name__)

SERVICE_UMASK = 0o077
HADOOP_UMASK = "077"
DIR_MODE = 0o700
FILE_MODE = 0o600
TMP_SUFFIX = ".tmp"  # a file being written atomically (temp file + rename); a leftover one is a killed write


def apply_umask() -> int:
    """Set the process umask to :data:`SERVICE_UMASK`; return the previous one."""
    return os.umask(SERVICE_UMASK)


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(SERVICE_UMASK)
    os.umask(mask)
    return mask


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (mode 0700) or tighten it to 0700 with a warning when group/other had access."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        log.warning("data folder %s had mode %o; tightening to %o (it holds personal data)", p, mode, DIR_MODE)
        os.chmod(p, DIR_MODE)
    return p


def secure_process(settings: Settings | None = None) -> None:
    """The umask of the service, and (given settings) a private data root and local lake root."""
    apply_umask()
    if settings is None or "://" in settings.data_root:
        return
    private_dir(settings.data)
    if "://" not in settings.lake:
        private_dir(settings.lake)


def exposed(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Files and directories under ``root`` (included) that group or other may read, write or enter.

    Returns ``(path, octal mode)`` pairs; symbolic links are skipped (their target is checked where it lives).
    """
    out: list[tuple[str, str]] = []
    base = Path(root)
    paths = [base, *base.rglob("*")] if base.exists() else []
    for p in paths:
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & 0o077:
            out.append((str(p), oct(stat.S_IMODE(st.st_mode))))
    return out


def ensure_dir(path: Path, root: Path | None = None) -> None:
    """Create ``path`` (and parents) with mode 0o700; fix the mode of each level below ``root``."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    level = path
    while True:
        os.chmod(level, DIR_MODE)
        if root is None or level == root or level.parent == level or root not in level.parents:
            break
        level = level.parent


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``), mode 0o600.

    Returns False (and leaves the file untouched) when it already holds exactly ``data``.
    """
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        if (path.stat().st_mode & 0o777) != FILE_MODE:
            os.chmod(path, FILE_MODE)
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        fault_point("exports.before_rename")  # the temp file complete, the target not replaced yet
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True
