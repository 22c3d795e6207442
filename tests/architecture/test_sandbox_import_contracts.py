"""The sandbox's import contracts (issue 13): the emulators sit over one shared kit, never
import each other, and have no import cycle inside (the runtime ↔ webhook-dispatcher cycle
each had is gone). The contracts live in pyproject.toml; these tests show they can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "whatsapp_helpdesk"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_copy_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """import-linter on a copy of the package where `module` (a path under it) gets `line`."""
    copy = tmp_path / "whatsapp_helpdesk"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )


def test_a_webhook_dispatcher_importing_its_runtime_breaks_the_acyclic_contract(
    tmp_path: Path,
) -> None:
    result = _lint_copy_with(
        tmp_path, "sandbox/hubspot/webhooks.py",
        "from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox as Runtime",
    )
    assert result.returncode != 0, result.stdout
    assert "No import cycle among the sandbox's modules, at any depth BROKEN" in result.stdout
    assert "1 broken" in result.stdout


def test_the_kit_importing_an_emulator_breaks_the_layers_contract(tmp_path: Path) -> None:
    result = _lint_copy_with(
        tmp_path, "sandbox/kit/faults.py",
        "from whatsapp_helpdesk.sandbox.aircall import constants",
    )
    assert result.returncode != 0, result.stdout
    assert ("The two emulators sit over the sandbox kit and do not import each other BROKEN"
            in result.stdout)
    assert "whatsapp_helpdesk.sandbox.kit.faults ->" in result.stdout
    # The emulators import the kit, so the same import is also a cycle.
    assert "2 broken" in result.stdout
