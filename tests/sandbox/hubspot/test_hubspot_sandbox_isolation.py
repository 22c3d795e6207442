"""The sandbox is an independent check of the bridge: it imports nothing of the service."""

from __future__ import annotations

import ast
from pathlib import Path

import whatsapp_helpdesk.sandbox.hubspot as package

# Its own package, and the kit both emulators share (sandbox/api_docs.py, sandbox/kit/); never
# the bridge, never the other emulator.
ALLOWED_PREFIX = ("whatsapp_helpdesk.sandbox.hubspot", "whatsapp_helpdesk.sandbox.api_docs",
                  "whatsapp_helpdesk.sandbox.kit")


def test_sandbox_imports_nothing_from_the_service() -> None:
    offenders: list[str] = []
    root = Path(package.__file__).parent
    for source in sorted(root.rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    offenders.append(f"{source.name}: relative import")
                names = [node.module or ""]
            for name in names:
                if name.startswith("whatsapp_helpdesk") and not name.startswith(ALLOWED_PREFIX):
                    offenders.append(f"{source.name}: {name}")
    assert offenders == []
