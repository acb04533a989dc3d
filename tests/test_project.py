"""The project says one thing in every place it says it: the version is written once (and the changelog knows
it), and the Python versions claimed are the ones the tools target and this suite runs on."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import lakegate

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lakegate.__version__"}
    assert version("lakegate") == lakegate.__version__


def test_the_changelog_has_the_version_and_an_unreleased_section() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert lakegate.__version__ in headings


def _claimed() -> set[tuple[int, int]]:
    prefix = "Programming Language :: Python :: "
    versions = [c.removeprefix(prefix) for c in PYPROJECT["project"]["classifiers"] if c.startswith(prefix)]
    return {(int(major), int(minor)) for major, minor in (v.split(".") for v in versions if "." in v)}


def test_tools_target_the_lowest_claimed_python() -> None:
    lowest = min(_claimed())
    assert PYPROJECT["project"]["requires-python"] == ">={}.{}".format(*lowest)
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py{}{}".format(*lowest)
    assert PYPROJECT["tool"]["mypy"]["python_version"] == "{}.{}".format(*lowest)


def test_this_suite_runs_on_a_claimed_python() -> None:
    # CI runs this suite: a Python CI uses that the classifiers do not name fails here. (The reverse, a claimed
    # Python CI never runs, is kept out by CONTRIBUTING.md's rule: claim a version with the CI change that runs it.)
    assert sys.version_info[:2] in _claimed()
