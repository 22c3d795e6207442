"""`mypy --strict` finds nothing in src/ (issue 13 item 4); its settings are [tool.mypy] in
pyproject.toml (strict, with pydantic's plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(seconds=12)  # a whole mypy run: started first (tests/harness/ordering.py)
def test_mypy_strict_finds_nothing_in_src() -> None:
    # Incremental, in mypy's own cache (.mypy_cache in the checkout, shared with a `mypy` run
    # by hand): a cold run costs ~15 s of CPU, a run after a few edits re-checks only the
    # modules changed and their dependants (0.5 s when nothing changed). A module with errors
    # is reported again on every run, cached or not.
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Success: no issues found" in run.stdout
