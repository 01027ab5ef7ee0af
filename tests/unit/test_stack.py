"""The pinned stack installs and imports together (the fresh-venv proof runs in CI via `make test`)."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", dep.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_installed_versions_match_pins():
    pins = _pins()
    assert {"pyspark", "delta-spark", "apache-airflow", "great-expectations"} <= set(pins)
    mismatched = {name: (want, md.version(name)) for name, want in pins.items() if md.version(name) != want}
    assert not mismatched, f"installed versions differ from pyproject pins: {mismatched}"


def test_pandas_below_3_for_pyspark_pandas():
    import pandas

    assert int(pandas.__version__.split(".")[0]) < 3


def test_pyspark_imports_in_a_fresh_interpreter(tmp_path):
    # pyspark-client (pulled by some Airflow providers) ships the same pyspark/ files;
    # prove the real pyspark is importable and complete in a clean process.
    code = (
        "import pyspark, pyspark.sql, pyspark.pandas, delta, great_expectations, airflow;"
        "print(pyspark.__version__)"
    )
    # A script file, not `python -c`: pyspark.sql.connect (imported by GX) exits a `-c`
    # interpreter when the optional Spark Connect deps are absent, thinking it runs doctests.
    script = tmp_path / "imports.py"
    script.write_text(code.replace(";", "\n"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == _pins()["pyspark"]
    # The JVM side of pyspark (jars) is present, i.e. this is the full pyspark, not the thin client.
    import pyspark

    jars = list((Path(pyspark.__file__).parent / "jars").glob("spark-core_*.jar"))
    assert jars, "pyspark/jars/spark-core is missing: the thin pyspark-client may have overwritten pyspark"


def test_gridlake_console_script_help():
    out = subprocess.run([sys.executable, "-m", "gridlake.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for cmd in ("generate", "run", "demo", "resolve-addresses", "evaluate", "bench", "sql"):
        assert cmd in out.stdout


def _lock() -> dict[str, str]:
    """``requirements.lock``: every package of the stack, transitive ones too, at one version each (on this
    interpreter and platform)."""
    from packaging.markers import Marker

    lock: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)\s*(?:;(.*))?$", line)
        if m and (not m.group(3) or Marker(m.group(3)).evaluate()):  # the line for this interpreter and platform
            name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
            assert lock.setdefault(name, m.group(2)) == m.group(2), f"{name} pinned twice in requirements.lock"
    return lock


def test_lock_carries_every_pin_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    lock = _lock()
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*([=<>!~]=?[^;#]*)?.*", dep.split("#")[0].strip())
        assert m, dep
        name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
        assert name in lock, f"{name} of pyproject.toml is not in requirements.lock: run `make lock`"
        spec = (m.group(2) or "").strip()
        if spec.startswith("=="):
            assert lock[name] == spec[2:].strip(), f"{name}: pyproject.toml {spec}, requirements.lock {lock[name]}"


def test_installed_packages_are_the_locked_versions():
    lock = _lock()
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in md.distributions()}
    assert {"pyspark", "apache-airflow", "pytest"} <= set(installed) & set(lock)
    differ = {n: (lock[n], v) for n, v in installed.items() if n in lock and v != lock[n]}
    assert not differ, f"installed versions differ from requirements.lock (locked, installed): {differ}"
