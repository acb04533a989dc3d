"""Repeated KEY=VALUE options (`--property`, `--option`)."""

from __future__ import annotations

import pytest
import typer

from lakegate.cli.options import key_values


def test_pairs_become_a_dict_split_at_the_first_equals_sign() -> None:
    pairs = ["team=data", "url=https://x/?a=b", "empty=", "team=finance"]
    assert key_values(pairs, "--property") == {"team": "finance", "url": "https://x/?a=b", "empty": ""}


@pytest.mark.parametrize("pair", ["novalue", "=value", ""])
def test_anything_else_is_a_usage_error_naming_the_option(pair: str) -> None:
    with pytest.raises(typer.BadParameter, match="expected KEY=VALUE") as raised:
        key_values(["ok=1", pair], "--option")
    assert raised.value.param_hint == "--option"
