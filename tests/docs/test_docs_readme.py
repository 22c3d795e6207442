"""The README's settings table and its two commands match the code."""

from pathlib import Path

from whatsapp_helpdesk.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_R41_every_setting_is_documented_in_the_readme_table() -> None:
    text = README.read_text()
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in text, f"{name.upper()} missing from the README table"


def test_R40_readme_opens_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    commands = [line for line in lines[:8] if line.startswith("./scripts/")]
    assert [c.split()[0] for c in commands] == ["./scripts/run.sh", "./scripts/test.sh"]
    for command in commands:
        assert (README.parent / command.split()[0]).exists()


def test_issue6_readme_shows_every_screenshot_the_story_test_takes() -> None:
    """The README's story images exist, and each step the browser test photographs is shown
    (scripts/update-screenshots.sh copies them from test-artifacts/)."""
    import re

    stories = [README.parent / "tests" / "browser" / name for name in (
        "test_browser_full_story.py", "test_browser_reply_on_monday.py")]  # R52's story too
    steps = [step for story in stories
             for step in re.findall(r'screenshot\(\w+, "([^"]+)"\)', story.read_text())]
    shown = re.findall(r"\]\((docs/screenshots/[^)]+)\)", README.read_text())
    assert len(steps) >= 10, steps
    assert sorted(shown) == sorted(f"docs/screenshots/{step}.png" for step in steps)
    for image in shown:
        assert (README.parent / image).stat().st_size > 10_000, image
