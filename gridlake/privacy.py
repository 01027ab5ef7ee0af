"""Pseudonyms, masking and key handling (DESIGN.md section 6).

Gold and exports carry persons only as a keyed pseudonym (HMAC-SHA256 of the
validated ID number) and masked display values. The key comes from the
environment variable ``settings.privacy.key_env``; only a profile with
``privacy.allow_local_key`` (the local demo) may create its own key file
(mode 0600, under the data root, never in the repository). Every other profile
fails closed with a :class:`gridlake.errors.PrivacyError`.

:func:`pseudonym` computes HMAC-SHA256(key, id) as hex (``hmac.digest``) in a pandas UDF on the
executors. The key is captured in the function (never a literal in a query plan, so it cannot
leak through ``explain()`` or an analysis error in the logs).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # noqa: F401  (resolves the pandas UDF's type hints)

from gridlake.errors import PrivacyError

if TYPE_CHECKING:
    from pyspark.sql import Column

    from gridlake.config import Settings

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 16
#: Suffix of the environment variable that holds the next key during a rotation (``<key_env>_NEXT``).
NEXT_KEY_SUFFIX = "_NEXT"
#: Delta table property on every gold table: the key version its pseudonyms were made with.
KEY_VERSION_PROPERTY = "gridlake.pseudonymKeyVersion"


# --- keys ------------------------------------------------------------------------------------
def load_key(settings: Settings) -> bytes:
    """The pseudonym key: from the environment, else (demo profile only) a local 0600 key file.

    Raises :class:`PrivacyError` when no key is available and the profile may not make one,
    when the key is too short, or when it is not the lake's current key version
    (:func:`check_key_version`, after a ``gridlake rotate-key``).
    """
    env_name = settings.privacy.key_env
    value = os.environ.get(env_name, "")
    if value.strip():
        key = value.strip().encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise PrivacyError(f"the pseudonym key in ${env_name} is too short: use at least {MIN_KEY_BYTES} characters")
        check_key_version(settings, key)
        return key
    if not settings.privacy.allow_local_key:
        raise PrivacyError(
            f"no pseudonym key: set the environment variable {env_name} (profile {settings.profile!r} "
            "does not create a local key; gold data would not be pseudonymised consistently). Refusing to run."
        )
    key = _local_key(settings)
    check_key_version(settings, key)
    return key


def _local_key(settings: Settings) -> bytes:
    """The demo's local key: read it, or create it atomically (written to a private temporary
    file, then linked into place), so a run killed while creating it never leaves an empty key."""
    path = settings.key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".gridlake-key.", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if another run created it meanwhile: theirs wins
                log.info("created a local pseudonym key file %s (mode 0600, demo profile only)", path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("pseudonym key file %s had mode %o; tightening to 0600", path, mode)
        os.chmod(path, 0o600)
    key = path.read_text(encoding="utf-8").strip().encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise PrivacyError(f"the local pseudonym key file {path} is empty or too short; delete it to make a new one")
    return key


# --- key versions ----------------------------------------------------------------------------
def key_fingerprint(key: bytes) -> str:
    """A short public fingerprint of a key (HMAC of a constant): tells versions apart, reveals nothing."""
    return hmac_hex(key, "gridlake pseudonym key fingerprint")[:16]


def key_registry_path(settings: Settings) -> Path:
    """The lake's key registry: which key version is current, by fingerprint (never the key)."""
    base = Path(settings.lake) if "://" not in settings.lake else settings.data
    return base / "_keys" / "registry.json"


def read_key_registry(settings: Settings) -> dict[str, Any]:
    """The registry, or the implicit one of a lake never rotated (version 1, fingerprint unknown)."""
    path = key_registry_path(settings)
    if not path.exists():
        return {"current_version": 1, "versions": []}
    return json.loads(path.read_text(encoding="utf-8"))


def write_key_registry(settings: Settings, registry: dict[str, Any]) -> None:
    """Atomically replace the registry (mode 0600 through the process umask)."""
    path = key_registry_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(registry, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def current_key_version(settings: Settings) -> int:
    """The key version gold's pseudonyms are made with (1 until the first rotation)."""
    return int(read_key_registry(settings).get("current_version", 1))


def check_key_version(settings: Settings, key: bytes) -> None:
    """Fail closed when ``key`` is not the lake's current key version (after a rotation).

    A night run with the retired key would pseudonymise persons differently from gold and
    reopen every person's case under a new identity; this names the version instead.
    """
    reg = read_key_registry(settings)
    current = int(reg.get("current_version", 1))
    known = {int(v["version"]): v for v in reg.get("versions", [])}
    if current in known and known[current].get("fingerprint") != key_fingerprint(key):
        retired = [v for v, e in known.items() if e.get("fingerprint") == key_fingerprint(key)]
        what = f"the retired key version {retired[0]}" if retired else "an unknown key"
        raise PrivacyError(
            f"the pseudonym key in ${settings.privacy.key_env} is {what}, but the lake's current key is version "
            f"{current} (fingerprint {known[current].get('fingerprint')}); set ${settings.privacy.key_env} to the "
            "key that `gridlake rotate-key` installed. Refusing to run.")


def load_next_key(settings: Settings) -> bytes:
    """The key a rotation moves to: ``$<key_env>_NEXT``, else (demo profile only) a fresh random key."""
    env_name = settings.privacy.key_env + NEXT_KEY_SUFFIX
    value = os.environ.get(env_name, "").strip()
    if value:
        key = value.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise PrivacyError(f"the next pseudonym key in ${env_name} is too short: use at least {MIN_KEY_BYTES} characters")
        return key
    if not settings.privacy.allow_local_key:
        raise PrivacyError(f"no next pseudonym key: set ${env_name} to the new key (profile {settings.profile!r} "
                           "does not create keys). Refusing to rotate.")
    return secrets.token_hex(32).encode("utf-8")


def install_local_key(settings: Settings, key: bytes) -> None:
    """Replace the demo's local key file with ``key`` (atomic rename): the old key is gone from disk."""
    path = settings.key_file
    fd, tmp = tempfile.mkstemp(prefix=".gridlake-key.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key.decode("utf-8") + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def now_utc() -> str:
    """ISO timestamp (seconds, UTC) for registry and erasure records."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --- pseudonyms ------------------------------------------------------------------------------
def hmac_hex(key: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` (UTF-8) as 64 hex characters, in plain Python (``hmac.digest``: OpenSSL's
    one-shot HMAC, the same digest as ``hmac.new(...).hexdigest()`` without building an object per message)."""
    return hmac.digest(key, message.encode("utf-8"), "sha256").hex()


def discrepancy_id_py(key: bytes, rule_code: str, subject: str, person_key: str | None = None) -> str:
    """The stable discrepancy id: first 16 hex of HMAC(key, "<rule_code>|<subject>|<person_key or ''>")."""
    return hmac_hex(key, f"{rule_code}|{subject}|{person_key or ''}")[:16]


def hmac_column(col: Column | str, key: bytes) -> Column:
    """HMAC-SHA256 (hex) of a string column; null stays null.

    A pandas UDF with :mod:`hmac`: the key travels inside the pickled function, so it never
    appears in a query plan, an ``explain()`` or an analysis error in the logs (a literal
    ``k ^ ipad`` in a native SQL expression would).
    """
    from pyspark.sql import functions as F

    secret = bytes(key)

    @F.pandas_udf("string")
    def _hmac_sha256(values: pd.Series) -> pd.Series:
        return values.map(lambda v: None if v is None else hmac.digest(secret, v.encode("utf-8"), "sha256").hex())

    c = F.col(col) if isinstance(col, str) else col
    return _hmac_sha256(c)


def pseudonym(col: Column | str, key: bytes) -> Column:
    """The person key of a validated ID number: HMAC-SHA256 hex; null for null or empty input."""
    from pyspark.sql import functions as F

    c = F.col(col) if isinstance(col, str) else col
    return F.when(F.length(F.trim(c)) > 0, hmac_column(F.upper(F.trim(c)), key))


def pseudonym_py(key: bytes, id_number: str | None) -> str | None:
    """Python twin of :func:`pseudonym` (for the evaluation and tests)."""
    if id_number is None or not id_number.strip():
        return None
    return hmac_hex(key, id_number.strip().upper())


def discrepancy_id(rule_code: Column | str, subject: Column | str, person_key: Column | str | None, key: bytes) -> Column:
    """Column twin of :func:`discrepancy_id_py`."""
    from pyspark.sql import functions as F

    def lit_or_col(x):
        if x is None:
            return F.lit("")
        return F.col(x) if isinstance(x, str) else x

    msg = F.concat_ws("|", lit_or_col(rule_code), lit_or_col(subject), F.coalesce(lit_or_col(person_key), F.lit("")))
    return F.substring(hmac_column(msg, key), 1, 16)


# --- masking ---------------------------------------------------------------------------------
def mask_id(col: Column | str) -> Column:
    """an 18-character ID -> ``4403**********1234`` (first 4, ten stars, last 4)."""
    from pyspark.sql import functions as F

    c = F.col(col) if isinstance(col, str) else col
    n = F.length(c)
    return (F.when(c.isNull(), None)
            .when(n >= 8, F.concat(F.substring(c, 1, 4), F.lit("*" * 10), F.substring(c, -4, 4)))
            .otherwise(F.repeat(F.lit("*"), n)))


def mask_name(col: Column | str) -> Column:
    """``张三明`` -> ``张*明``, ``欧阳小明`` -> ``欧**明``, ``张三`` -> ``张*``, ``张`` -> ``*``."""
    from pyspark.sql import functions as F

    c = F.col(col) if isinstance(col, str) else col
    c = F.trim(c)
    n = F.length(c)
    return (F.when(c.isNull() | (n == 0), None)
            .when(n == 1, F.lit("*"))
            .when(n == 2, F.concat(F.substring(c, 1, 1), F.lit("*")))
            .otherwise(F.concat(F.substring(c, 1, 1), F.repeat(F.lit("*"), n - 2), F.substring(c, -1, 1))))


def mask_phone(col: Column | str) -> Column:
    """``13812345678`` -> ``138****5678``; other lengths keep at most 3 + 4 characters."""
    from pyspark.sql import functions as F

    c = F.col(col) if isinstance(col, str) else col
    n = F.length(c)
    return (F.when(c.isNull(), None)
            .when(n >= 7, F.concat(F.substring(c, 1, 3), F.lit("****"), F.substring(c, -4, 4)))
            .otherwise(F.repeat(F.lit("*"), n)))


def mask_id_py(value: str | None) -> str | None:
    """Python twin of :func:`mask_id`."""
    if value is None:
        return None
    return value[:4] + "*" * 10 + value[-4:] if len(value) >= 8 else "*" * len(value)


def mask_name_py(value: str | None) -> str | None:
    """Python twin of :func:`mask_name`."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if len(v) == 1:
        return "*"
    if len(v) == 2:
        return v[0] + "*"
    return v[0] + "*" * (len(v) - 2) + v[-1]


def mask_phone_py(value: str | None) -> str | None:
    """Python twin of :func:`mask_phone`."""
    if value is None:
        return None
    return value[:3] + "****" + value[-4:] if len(value) >= 7 else "*" * len(value)
