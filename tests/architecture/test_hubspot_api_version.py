"""R50: one module knows HubSpot's API version. No other bridge module spells a versioned
HubSpot path, so `HUBSPOT_API_VERSION` reaches every call."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from whatsapp_helpdesk.hubspot.api_paths import API_VERSIONS, hubspot_paths
from whatsapp_helpdesk.settings import Settings

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "whatsapp_helpdesk"
MAPPING = PACKAGE / "hubspot" / "api_paths.py"
# A HubSpot API path with a version in it: /crm/v3/..., /oauth/v1/..., /files/2026-03/...
VERSIONED_HUBSPOT_PATH = re.compile(
    r"/(conversations|crm|files|oauth)/(.*/)?(v\d+|\d{4}-\d{2})(/|$)"
)


def _code_strings(path: Path) -> list[str]:
    """String constants of the code (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_R50_no_bridge_module_but_the_mapping_spells_a_versioned_hubspot_path() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if "sandbox" not in path.relative_to(PACKAGE).parts and path != MAPPING
        and (hits := [s for s in _code_strings(path) if VERSIONED_HUBSPOT_PATH.search(s)])
    }
    assert offenders == {}


def test_R50_the_mapping_itself_is_seen_by_the_check() -> None:
    """The check above would find the mapping's paths: it is not blind."""
    assert [s for s in _code_strings(MAPPING) if VERSIONED_HUBSPOT_PATH.search(s)]


def test_R50_default_is_2026_03_and_v3_can_be_chosen() -> None:
    assert Settings().hubspot_api_version == "2026-03"
    assert Settings(hubspot_api_version="v3").hubspot_api_version == "v3"
    assert API_VERSIONS == ("2026-03", "v3")


def test_R50_an_unknown_version_is_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        Settings(hubspot_api_version="v4")
    with pytest.raises(ValueError, match="2026-03, v3"):
        hubspot_paths("2026-09")
