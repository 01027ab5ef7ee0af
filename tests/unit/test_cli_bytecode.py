"""The command line lets its processes write bytecode, as make does (gridlake.cli.write_bytecode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridlake import cli

ROOT = Path(__file__).resolve().parents[2]


def _child_compiles(tmp_path: Path, call_first: bool) -> list[Path]:
    """Bytecode a child of a process started with PYTHONDONTWRITEBYTECODE=1 leaves for a module it imports."""
    (tmp_path / "fresh_module_x.py").write_text("X = 1\n", encoding="utf-8")
    first = "from gridlake.cli import write_bytecode; write_bytecode(); " if call_first else ""
    code = (f"import subprocess, sys; {first}"
            "subprocess.run([sys.executable, '-c', 'import fresh_module_x'], check=True)")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=60)
    return sorted((tmp_path / "__pycache__").glob("fresh_module_x.*.pyc"))


def test_children_write_bytecode_once_the_command_line_allows_it(tmp_path):
    for case in ("before", "after"):
        (tmp_path / case).mkdir()
    assert _child_compiles(tmp_path / "before", call_first=False) == []   # the control: the variable is obeyed
    assert len(_child_compiles(tmp_path / "after", call_first=True)) == 1


def test_main_allows_it_before_anything_else(monkeypatch):
    monkeypatch.setenv(cli.NO_BYTECODE_ENV, "1")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    previous = os.umask(0o022)  # main sets the service's umask: restored for the tests after this one
    try:
        with pytest.raises(SystemExit):
            cli.main(["--help"])
    finally:
        os.umask(previous)
    assert cli.NO_BYTECODE_ENV not in os.environ
    assert sys.dont_write_bytecode is False


def test_nothing_to_allow_when_it_was_never_off(monkeypatch):
    monkeypatch.delenv(cli.NO_BYTECODE_ENV, raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert cli.write_bytecode() is False
    monkeypatch.setenv(cli.NO_BYTECODE_ENV, "1")
    assert cli.write_bytecode() is True


def test_a_stage_submitted_alone_allows_it_too(monkeypatch):
    import logging

    import gridlake.submit as submit

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # it reconfigures logging (force=True)
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setenv(cli.NO_BYTECODE_ENV, "1")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    previous = os.umask(0o022)
    try:
        with pytest.raises(SystemExit):
            submit.main(["--help"])
    finally:
        os.umask(previous)
    assert cli.NO_BYTECODE_ENV not in os.environ and sys.dont_write_bytecode is False
