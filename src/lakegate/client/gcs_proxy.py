"""A loopback HTTP proxy that adds a GCS bearer token to deltalake's requests.

deltalake (object_store) can read GCS with a service-account key but has no option for a plain OAuth token,
which is what directory access vends (a downscoped token). It can, however, talk to another base URL without
signing (`google_base_url` + `google_skip_signature`): this proxy listens on 127.0.0.1, forwards GET and HEAD
to Google with `Authorization: Bearer <token>`, and asks for the token on every request, so a refreshed token
is used without reopening the table. Only GET and HEAD are forwarded (the token is read-only anyway). Any
local process could use the proxy while it runs, with the same read-only, table-scoped reach.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FORWARDED_REQUEST = (
    "Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Accept",
)
_FORWARDED_RESPONSE = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "ETag",
    "Last-Modified",
    "Accept-Ranges",
    "x-goog-generation",
    "x-goog-hash",
    "x-goog-stored-content-length",
)


class TokenProxy:
    def __init__(self, upstream: str, token: Callable[[], str]) -> None:
        upstream = upstream.rstrip("/")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward("GET")

            def do_HEAD(self) -> None:
                self._forward("HEAD")

            def _refuse(self) -> None:
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815  - http.server's handler names

            def _forward(self, method: str) -> None:
                headers = {k: v for k in _FORWARDED_REQUEST if (v := self.headers.get(k)) is not None}
                headers["Authorization"] = f"Bearer {token()}"
                request = urllib.request.Request(upstream + self.path, method=method, headers=headers)  # noqa: S310  - fixed upstream
                try:
                    response: Any = urllib.request.urlopen(request, timeout=120)  # noqa: S310  - fixed https upstream
                except urllib.error.HTTPError as exc:
                    response = exc
                with response:
                    body = response.read() if method == "GET" else b""
                    self.send_response(response.status)
                    for name in _FORWARDED_RESPONSE:
                        if name != "Content-Length" and (value := response.headers.get(name)) is not None:
                            self.send_header(name, value)
                    length = response.headers.get("Content-Length") if method == "HEAD" else str(len(body))
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # no request log (URLs name the objects read)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="lakegate-gcs-proxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
