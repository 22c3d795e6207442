"""The architecture's import contracts, checked by import-linter (issue 13 item 1).

The contracts live in pyproject.toml ([tool.importlinter]): the domain imports nothing of
ours; the bridge and the sandbox never import each other (the CLI, which starts the
sandbox, aside); the use-case slices do not import each other, and sit below operations
and the entry points; the adapters know no slice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "whatsapp_helpdesk"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(*, python_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def _contracts() -> dict[str, dict[str, list[str]]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _top_level_modules() -> set[str]:
    return {
        f"whatsapp_helpdesk.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").is_file())
    }


def test_every_import_contract_is_kept() -> None:
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_name_every_module_of_the_package() -> None:
    """A module added later is forbidden to the domain and kept apart from the sandbox
    only if the lists name it: they must stay complete."""
    contracts = _contracts()
    ours = _top_level_modules()
    assert "whatsapp_helpdesk.domain" in ours and "whatsapp_helpdesk.sandbox" in ours
    forbidden_to_domain = {m for m in contracts["domain-is-pure"]["forbidden_modules"]
                           if m.startswith("whatsapp_helpdesk.")}
    assert forbidden_to_domain == ours - {"whatsapp_helpdesk.domain"}
    bridge = ours - {"whatsapp_helpdesk.sandbox"}
    assert set(contracts["sandbox-never-imports-the-bridge"]["forbidden_modules"]) == bridge
    assert set(contracts["bridge-never-imports-the-sandbox"]["source_modules"]) == (
        bridge - {"whatsapp_helpdesk.cli"})


def test_a_domain_module_that_imports_the_database_breaks_a_contract(tmp_path: Path) -> None:
    """The contracts can fail: the same check on a copy of the package where the domain
    reaches for the database is refused, naming the import."""
    copy = tmp_path / "whatsapp_helpdesk"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    window = copy / "domain" / "window.py"
    window.write_text(window.read_text() + "\nfrom whatsapp_helpdesk.db import models  # noqa\n")
    result = _lint_imports(python_path=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "whatsapp_helpdesk.domain.window -> whatsapp_helpdesk.db" in result.stdout
    assert "1 broken" in result.stdout


def test_a_slice_that_imports_another_breaks_a_contract(tmp_path: Path) -> None:
    """Slices stay independent: a reply flow reaching into the inbound slice is refused."""
    copy = tmp_path / "whatsapp_helpdesk"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    reply = copy / "replies" / "reply.py"
    sideways = "\nfrom whatsapp_helpdesk.inbound import publish  # noqa\n"
    reply.write_text(reply.read_text() + sideways)
    result = _lint_imports(python_path=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "whatsapp_helpdesk.replies.reply -> whatsapp_helpdesk.inbound.publish" in result.stdout


@pytest.mark.parametrize("module", ["replies/reply.py", "inbound/media.py", "credentials.py"])
def test_a_slice_that_takes_the_composition_root_breaks_a_contract(
    tmp_path: Path, module: str
) -> None:
    """Slices say what they need (their ports) instead of taking `bootstrap.Services`: a
    slice module, or credentials.py below them all, that imports bootstrap is refused."""
    copy = tmp_path / "whatsapp_helpdesk"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    taking_the_bag = "\nfrom whatsapp_helpdesk.bootstrap import Services  # noqa\n"
    path.write_text(path.read_text() + taking_the_bag)
    result = _lint_imports(python_path=tmp_path)
    assert result.returncode != 0, result.stdout
    importer = "whatsapp_helpdesk." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> whatsapp_helpdesk.bootstrap" in result.stdout
    assert "1 broken" in result.stdout
