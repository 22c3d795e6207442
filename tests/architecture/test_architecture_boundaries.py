"""The package's boundaries: the sandbox stays an independent check of the bridge, and the
domain stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "whatsapp_helpdesk"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


def test_bridge_never_imports_the_sandbox_except_the_cli() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in _modules(PACKAGE)
        if "sandbox" not in path.relative_to(PACKAGE).parts
        and path.name != "cli.py"
        and any(name.startswith("whatsapp_helpdesk.sandbox") for name in _imports(path))
    ]
    assert offenders == []


def test_sandbox_never_imports_the_bridge() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in _modules(PACKAGE / "sandbox")
        for name in _imports(path)
        if name.startswith("whatsapp_helpdesk") and not name.startswith("whatsapp_helpdesk.sandbox")
    ]
    assert offenders == []


def test_domain_does_no_io() -> None:
    forbidden = ("httpx", "sqlalchemy", "fastapi", "starlette", "whatsapp_helpdesk.db",
                 "whatsapp_helpdesk.hubspot", "whatsapp_helpdesk.aircall", "socket", "requests")
    offenders = [
        f"{path.name}: {name}"
        for path in _modules(PACKAGE / "domain")
        for name in _imports(path)
        if name.startswith(forbidden)
    ]
    assert offenders == []
