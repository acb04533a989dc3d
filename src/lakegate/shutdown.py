"""How `lakegate serve` stops: SIGTERM drains requests in flight for at most `shutdownTimeoutSeconds`, Ctrl-C
(SIGINT) cuts them after at most one second; either way the process exits 0 with one log line per request cut
off, not a traceback.

uvicorn re-raises the signal it caught once it has shut down (exit 143 or 130) and logs the cancellation of
each request it cuts as "Exception in ASGI application" with its traceback; both are changed here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("lakegate")
INTERRUPT_GRACE_SECONDS = 1  # Ctrl-C: an operator at a terminal wants the prompt back, not a drain


class Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT:
            configured = self.config.timeout_graceful_shutdown or INTERRUPT_GRACE_SECONDS
            self.config.timeout_graceful_shutdown = min(configured, INTERRUPT_GRACE_SECONDS)
        if not self.should_exit:
            log.info(
                "%s: stopping (requests in flight get %ss to finish)",
                signal.Signals(sig).name,
                self.config.timeout_graceful_shutdown,
            )
        elif sig == signal.SIGINT and not self.force_exit:
            log.info("SIGINT again: stopping now")  # uvicorn's force exit: no drain, no lifespan shutdown
        logging.getLogger("uvicorn.error").addFilter(_drop_shutdown_noise)
        super().handle_exit(sig, frame)
        # A shutdown asked for is a success: exit 0 (documented) rather than die of the signal afterwards.
        getattr(self, "_captured_signals", []).clear()


def _drop_shutdown_noise(record: logging.LogRecord) -> bool:
    """During shutdown, uvicorn's ERROR for each answer cut off repeats CutOffQuietly's line, misleadingly; on a
    second Ctrl-C the lifespan task is cancelled and starlette reports it as a traceback ending in
    CancelledError, for an exit the operator asked for."""
    message = record.getMessage()
    if message == "ASGI callable returned without completing response.":
        return False
    return not (message.startswith("Traceback") and message.rstrip().endswith("CancelledError"))


class CutOffQuietly:
    """The outermost ASGI layer: a request cancelled by the shutdown ends with one line, not a traceback. The
    chunk being made in a worker thread is finished first (threads cannot be interrupted), then the answer's
    generator is dropped and closed: no further chunk is read or signed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if scope["type"] != "http":
                raise  # the lifespan task: uvicorn handles its own cancellation
            log.warning("%s %s: cut off by the shutdown", scope["method"], scope["path"])
