"""A router that remembers which route answered a path, so a repeated request is matched against one route
instead of every route before it (Starlette tries them in order: a /query on the protocol's mount was ~10
regular-expression matches per request, a measurable part of a small request's time)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send

MAX_REMEMBERED = 1024  # paths carry callers' names: bounded, forgotten all at once when full


class RememberingRouter(Router):
    def __init__(self, routes: Sequence[BaseRoute], redirect_slashes: bool = True) -> None:
        super().__init__(list(routes), redirect_slashes=redirect_slashes)
        self._answered: dict[tuple[str, str], BaseRoute] = {}  # (path, method) -> first route matching fully

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = (scope["path"], scope["method"])
            route = self._answered.get(key)
            if route is None:
                route = self._first_full(scope)
                if route is not None:
                    if len(self._answered) >= MAX_REMEMBERED:
                        self._answered.clear()
                    self._answered[key] = route
            if route is not None:
                # Matched again for its path parameters (and in case it no longer matches: then as before).
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        # Unknown paths, wrong methods (405 from a partial match), slash redirects: Starlette's own walk.
        await super().app(scope, receive, send)

    def _first_full(self, scope: Scope) -> BaseRoute | None:
        """The route Starlette would pick: the first that matches fully, whatever partial matches precede it."""
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route
        return None
