"""The repository holds no secret: every git-tracked (or new, not ignored) file is scanned for key material.

Looked for: private keys (PEM blocks), key/credential files (``.key``, ``.pem``, ``id_rsa``,
``.env``, the local pseudonym key file ``.gridlake-key``), a value given to
``GRIDLAKE_PSEUDONYM_KEY`` (shell ``=`` / YAML ``:`` / Python ``"NAME", "value"``), and
high-entropy hex (32+ bytes) or base64 (32+ bytes) strings assigned to a name containing
key, secret, password, token or credential. A value that says it is a placeholder
(``test``, ``example``, ``not-secret``, ``changeme``...) is allowed. The scanner is checked
on planted secrets first, so an empty result means something.

Reproduce: ``.venv/bin/python -m pytest -q tests/unit/test_repo_secrets.py``
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
from collections import Counter
from pathlib import Path

from gridlake.config import REPO_ROOT

SECRET_FILE_SUFFIXES = {".key", ".pem", ".p12", ".pfx", ".jks", ".keystore"}
SECRET_FILE_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".env", ".gridlake-key", ".netrc", ".pgpass",
                     "credentials"}
PLACEHOLDER = re.compile(r"(?i)test|example|not[-_]?secret|changeme|dummy|placeholder|your[-_]|xxxx|fake")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
PSEUDONYM_VALUE = re.compile(
    r"GRIDLAKE_PSEUDONYM_KEY(?:\s*[=:]\s*[\"']?|[\"']\s*,\s*[\"'])(?P<v>[^\s\"'$<{`(]{8,})")
ASSIGNED = re.compile(
    r"(?i)[\w.-]*(?:key|secret|passw(?:or)?d|pwd|token|credential)[\w.-]*[\"']?\s*[:=]\s*[\"']?"
    r"(?P<v>[A-Fa-f0-9]{64,}|[A-Za-z0-9+/_-]{43,}={0,2})(?![A-Za-z0-9+/=_-])")
AWS_KEY_ID = re.compile(r"\bAKIA[0-9A-Z]{16}\b")
# Literal values reviewed and accepted: (file, sha256 prefix of the value) - the value itself is not repeated here.
ACCEPTED = {
    ("tests/unit/test_privacy.py", "79cbbc0da3d9"),  # "an-env-key-..." : a readable phrase set by a test
}


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _high_entropy(value: str) -> bool:
    if re.fullmatch(r"[A-Fa-f0-9]+", value):
        return entropy(value) >= 3.0  # random hex is close to 4 bits per character
    return entropy(value) >= 4.0  # random base64 is close to 6


def fingerprint(value: str) -> str:
    """A short SHA-256 prefix naming a value in a finding without showing it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def scan_text(name: str, text: str) -> list[str]:
    """Findings ("<file>:<line>: <kind> [sha256:<prefix>]") in one file's text; the secret itself is never shown."""
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if PRIVATE_KEY.search(line):
            out.append(f"{name}:{number}: private key block")
        if AWS_KEY_ID.search(line):
            out.append(f"{name}:{number}: AWS access key id")
        for m in PSEUDONYM_VALUE.finditer(line):
            v = m.group("v")
            if not PLACEHOLDER.search(v) and (name, fingerprint(v)) not in ACCEPTED:
                out.append(f"{name}:{number}: value of GRIDLAKE_PSEUDONYM_KEY [sha256:{fingerprint(v)}]")
        for m in ASSIGNED.finditer(line):
            v = m.group("v")
            if _high_entropy(v) and not PLACEHOLDER.search(m.group(0)) and (name, fingerprint(v)) not in ACCEPTED:
                out.append(f"{name}:{number}: high-entropy value ({len(v)} characters) assigned to a secret-like "
                           f"name [sha256:{fingerprint(v)}]")
    return out


def scan_file(root: Path, rel: str) -> list[str]:
    """Findings in one tracked file: its name, then (text files up to 5 MB) its content."""
    path = root / rel
    out = []
    if path.suffix.lower() in SECRET_FILE_SUFFIXES or path.name in SECRET_FILE_NAMES:
        out.append(f"{rel}: a key or credential file is tracked")
    if not path.is_file() or path.stat().st_size > 5 * 1024 * 1024:
        return out
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        return out  # binary (workbooks, fonts, images)
    return out + scan_text(rel, data.decode("utf-8", errors="replace"))


def tracked_files(root: Path = REPO_ROOT) -> list[str]:
    """Tracked files, and new files git would add (not ignored), relative to the repository root."""
    proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          capture_output=True, check=True, timeout=60)
    return [p for p in proc.stdout.decode("utf-8").split("\0") if p]


def test_the_scanner_finds_planted_secrets(tmp_path):
    hexkey = "9f3c2a7be41d08c6" "5a1e7f93b2c40d18" "e6a95b3f0c7d2e41" "b8f06a3c9d25e7b1"  # split: not a literal here
    planted = {
        "a.txt": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...\n",
        "b.env": "export GRIDLAKE_PSEUDONYM" + "_KEY=" + hexkey + "\n",
        "c.yaml": "privacy:\n  signing_" + "secret: " + hexkey + "\n",
        "d.py": 'os.environ.setdefault("GRIDLAKE_PSEUDONYM' + '_KEY", "' + hexkey + '")\n',
        "e.py": 'API_TOKEN = "' + "q8Zr2Lw9Xv4Nk7Tb1Hc6Yp3Md5Fs0Gj8Qe2Ua7Io4Bz" + '"\n',
        "f.conf": "aws_access_key_id = AKIA" + "QW3ERTY7UIOP4ASD\n",
    }
    for name, text in planted.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "server.pem").write_text("x", encoding="utf-8")
    findings = {f.split(":")[0] for name in [*planted, "server.pem"] for f in scan_file(tmp_path, name)}
    assert findings == {*planted, "server.pem"}
    # placeholders, references to the environment and hashes under other names are not secrets
    fine = ("export GRIDLAKE_PSEUDONYM" + "_KEY=$(openssl rand -hex 32)\n"
            "GRIDLAKE_PSEUDONYM" + "_KEY=<your key>\n"
            'os.environ.setdefault("GRIDLAKE_PSEUDONYM' + '_KEY", "test-only-key-not-secret-0123456789abcdef")\n'
            f"file_sha256: {hexkey}\n"
            "key_env: GRIDLAKE_PSEUDONYM" + "_KEY\n")
    assert scan_text("fine.txt", fine) == []


def test_the_repository_holds_no_secret():
    files = tracked_files()
    assert len(files) > 50 and "gridlake/privacy.py" in files and "tests/unit/test_repo_secrets.py" in files
    findings = [f for rel in files for f in scan_file(REPO_ROOT, rel)]
    assert findings == []


def test_the_local_key_file_and_data_are_ignored_by_git():
    probe = ["data/.gridlake-key", ".gridlake-key", "data/lake/bronze/x/part-0.parquet", "data/exports/a.xlsx"]
    proc = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", *probe], capture_output=True, text=True,
                          timeout=60, check=False)
    assert sorted(proc.stdout.split()) == sorted(probe)
