"""Docs as tests: every configuration key and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from lakegate.config import ServerConfig

ROOT = Path(__file__).resolve().parents[1]


def _keys(model: type[BaseModel]) -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        if name.startswith("_") or field.exclude:
            continue
        found.add(field.alias or name)
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    found |= _keys(inner)
    return found


def test_every_configuration_key_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(key for key in _keys(ServerConfig) if key not in text)
    assert not missing, f"undocumented configuration keys: {missing}"


def test_every_cli_command_is_documented() -> None:
    import typer.main

    from lakegate.cli.main import app

    docs = " ".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    command = typer.main.get_command(app)
    missing = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if f"lakegate {name}" not in docs:
            missing.append(name)
        for child in getattr(sub, "commands", {}):
            if f"lakegate {name} {child}" not in docs and f"{name} {child}" not in docs:
                missing.append(f"{name} {child}")
    assert not missing, f"undocumented CLI commands: {missing}"


def test_every_error_answer_is_documented() -> None:
    import re

    from lakegate.exceptions import LakegateError

    def tree(cls: type[LakegateError]) -> set[type[LakegateError]]:
        return {cls}.union(*(tree(sub) for sub in cls.__subclasses__()))

    text = (ROOT / "docs" / "protocol-notes.md").read_text()
    documented = {(int(s), c) for s, c in re.findall(r"^\| (\d{3}) \| `([A-Z_]+)` \|", text, re.MULTILINE)}
    answered = {(cls.status, cls.error_code) for cls in tree(LakegateError)}
    assert documented == answered
