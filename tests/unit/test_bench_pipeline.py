"""The pipeline bench never counts a failed night as meeting a target."""

from __future__ import annotations

from tools.bench.pipeline import night_met


def test_a_failed_night_never_meets_its_target():
    assert night_met({"returncode": 0, "seconds": 400.0}, 480)
    assert not night_met({"returncode": 0, "seconds": 481.0}, 480)
    assert not night_met({"returncode": 1, "seconds": 100.0}, 480)     # died early: not a fast night
    assert not night_met({"returncode": 0, "seconds": None}, 480)


def test_a_failed_commands_whole_stderr_is_kept_in_a_private_file():
    import os
    import stat
    import sys

    from tools.bench.kit import measure

    script = "import sys; sys.stderr.write('CAUSE: context stopped\\n' + 'x' * 5000 + '\\nlast line'); sys.exit(3)"
    m = measure([sys.executable, "-c", script], interval=0.05)
    assert m.returncode == 3 and m.stderr_log
    try:
        text = open(m.stderr_log, encoding="utf-8").read()
        assert text.startswith("CAUSE: context stopped") and text.endswith("last line") and len(text) > 5000
        assert stat.S_IMODE(os.stat(m.stderr_log).st_mode) == 0o600
    finally:
        os.unlink(m.stderr_log)
    assert measure([sys.executable, "-c", "pass"], interval=0.05).stderr_log is None
