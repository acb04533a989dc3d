"""The outside yardstick of bench_small.py: a minimal Starlette app with one hello-world route, served by uvicorn
as `lakegate serve` is (one worker, httptools, uvloop when installed, no uvicorn access log).

    .venv/bin/python benchmarks/hello_world.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", hello)])

if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", access_log=False, log_level="warning"
    )
