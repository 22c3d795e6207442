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
