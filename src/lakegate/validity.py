"""What an answer depends on, so that the same request may be given the same answer again while it holds.

The connection's fast lane (`LakegateApp.answer_now`) keeps the answers of repeated small requests (the same
caller, path, headers and body) for at most a second. While one is made, the parts that read something that can
change say how to tell that it has not: the snapshot cache registers "this is still the table's latest
snapshot" (`depends_on`), a query's answer "still the second its URLs were signed in", a credential's "the vended
credential is still the one to hand out". A part whose answer cannot be checked that way (time travel, a page of
a walk) makes it not reusable (`not_reusable`). Outside `tracking()` (threads, the CLI, tests) these calls cost one
context-variable read. The caller's credential and grants are checked by the fast lane itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any


class Dependencies:
    """The checks an answer was made under; `reusable` is False when one part could not say."""

    __slots__ = ("checks", "reusable")

    def __init__(self) -> None:
        self.checks: list[tuple[Callable[..., bool], tuple[Any, ...]]] = []
        self.reusable = True

    def hold(self) -> bool:
        """Whether every check still holds (in the order registered)."""
        return all(check(*args) for check, args in self.checks)


_CURRENT: ContextVar[Dependencies | None] = ContextVar("lakegate_dependencies", default=None)


def tracking() -> tuple[Dependencies, Token[Dependencies | None]]:
    """Start collecting the dependencies of the answer about to be made; `stop(token)` after."""
    dependencies = Dependencies()
    return dependencies, _CURRENT.set(dependencies)


def stop(token: Token[Dependencies | None]) -> None:
    _CURRENT.reset(token)


def depends_on(check: Callable[..., bool], *args: Any) -> None:
    """The answer being made holds while `check(*args)` is true (it must be quick and never block)."""
    dependencies = _CURRENT.get()
    if dependencies is not None:
        dependencies.checks.append((check, args))


def not_reusable() -> None:
    """The answer being made must not be given again."""
    dependencies = _CURRENT.get()
    if dependencies is not None:
        dependencies.reusable = False
