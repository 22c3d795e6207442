"""Every requirement of SPEC.md is named by at least one test (issue 13 item 6).

A test names a requirement in its name or its docstring ("test_R24_…", "(R45)"); a
requirement that no test names is a promise nobody checks. The few requirements that are
being built on other branches right now are listed in PENDING with the reason; the list
may only shrink: a pending requirement that a test names already fails this suite, so that
it is taken off the list the day its tests land.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
# The spec lives in the team's shared folder, beside the repository; SPEC_PATH moves it.
SPEC_CANDIDATES = [os.environ.get("SPEC_PATH"), ROOT / "docs" / "SPEC.md",
                   ROOT.parent / "shared" / "spec" / "SPEC.md", "/work/shared/spec/SPEC.md"]

# Requirements whose behaviour is not on this branch yet (another helper is building it).
PENDING: dict[str, str] = {}

# "- R13. The whole conversation…": the list items that define a requirement.
DEFINITION = re.compile(r"^- (R\d+)\.", re.MULTILINE)
# R13 but not R130 nor PR13. A range ("R21–R27" in a module's docstring) names its two ends
# only: a module that claims a whole range proves nothing of the requirements inside it.
NAMED = re.compile(r"(?<![A-Za-z0-9])(R\d+)(?!\d)")


def requirements_of(spec_text: str) -> list[str]:
    return DEFINITION.findall(spec_text)


def requirements_named_in(text: str) -> set[str]:
    return set(NAMED.findall(text))


def requirements_named_by_tests() -> set[str]:
    """What the test modules name (test_*.py only: a helper module proves nothing)."""
    named: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        if path.resolve() == Path(__file__).resolve():
            continue  # this file names every pending requirement, and proves none
        named |= requirements_named_in(path.read_text())
    return named


@pytest.fixture(scope="module")
def spec_requirements() -> list[str]:
    spec = next((Path(c) for c in SPEC_CANDIDATES if c and Path(c).is_file()), None)
    assert spec is not None, f"SPEC.md not found in {SPEC_CANDIDATES} (set SPEC_PATH)"
    found = requirements_of(spec.read_text())
    assert len(found) >= 30, f"too few requirements read from {spec}: {found}"
    return found


def test_every_requirement_of_the_spec_is_named_by_a_test(spec_requirements: list[str]) -> None:
    named = requirements_named_by_tests()
    unnamed = [r for r in spec_requirements if r not in named and r not in PENDING]
    assert unnamed == [], f"requirements no test names: {unnamed}"


def test_pending_requirements_are_still_unnamed_and_still_in_the_spec(
    spec_requirements: list[str],
) -> None:
    named = requirements_named_by_tests()
    assert sorted(set(PENDING) & named) == [], "tests name these now: take them off PENDING"
    assert sorted(set(PENDING) - set(spec_requirements)) == []


def test_the_reader_finds_names_and_ranges_and_nothing_else() -> None:
    """The checker's own parsing: a requirement inside another word or number is no name."""
    assert requirements_named_in("def test_R24_window(): '(R14-R16, R45)'") == {
        "R24", "R14", "R16", "R45"}
    assert requirements_named_in("PR13 HR5 r13 R130") == {"R130"}
    assert requirements_of("- R1. One.\n  - R2. nested\n- R3. Three.\nR4. loose") == ["R1", "R3"]
