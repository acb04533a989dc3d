"""The remembering router picks the route Starlette's would, on the first request and on every repeat."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient

from lakegate.http.routing import RememberingRouter


def _named(name: str) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return endpoint


def _routes() -> list[Route]:
    return [
        Route("/t/{table}/query", _named("query"), methods=["POST"]),
        Route("/t/{table}/{what}", _named("any")),
        Route("/t/fixed/version", _named("never: shadowed by the route before")),
    ]


def _answers(router: Router) -> list[tuple[int, str]]:
    client = TestClient(Starlette(routes=[Mount("/api", app=router)]))
    calls = [
        ("POST", "/api/t/a/query"),
        ("GET", "/api/t/a/query"),  # partial match of the first route, full of the second
        ("PUT", "/api/t/b/version"),  # 405: only a partial match
        ("GET", "/api/t/fixed/version"),
        ("GET", "/api/t/a/version/"),  # slash redirect or 404, as Starlette decides
        ("GET", "/api/nothing"),
    ]
    out = []
    for _ in range(2):  # the second round is answered from what the router remembered
        for method, path in calls:
            answer = client.request(method, path, follow_redirects=False)
            out.append((answer.status_code, answer.text))
    return out


def test_same_answers_as_starlettes_router_on_first_and_repeated_requests() -> None:
    assert _answers(RememberingRouter(_routes())) == _answers(Router(_routes()))


def test_path_parameters_are_each_requests_own() -> None:
    client = TestClient(Starlette(routes=[Mount("/api", app=RememberingRouter(_routes()))]))
    assert client.post("/api/t/a/query").text == "query {'table': 'a'}"
    assert client.post("/api/t/b/query").text == "query {'table': 'b'}"
    assert client.post("/api/t/a/query").text == "query {'table': 'a'}"
