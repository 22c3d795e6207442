"""`mypy --strict` finds nothing in src/ (issue 13 item 4); its settings are [tool.mypy] in
pyproject.toml (strict, with pydantic's plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(seconds=10)  # a whole mypy run: started first (tests/harness/ordering.py)
def test_mypy_strict_finds_nothing_in_src() -> None:
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Success: no issues found" in run.stdout
