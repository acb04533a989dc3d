"""The `lakegate` command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lakegate import __version__
from lakegate.cli.admin import register as register_admin_commands
from lakegate.cli.options import ConfigOption
from lakegate.cli.recipient import app as recipient_app
from lakegate.exceptions import ConfigError
from lakegate.tls import ssl_options

app = typer.Typer(help="lakegate: a Delta Sharing server.", no_args_is_help=True, add_completion=False)
app.add_typer(recipient_app, name="recipient")
register_admin_commands(app)
LOG_LEVELS = ("debug", "info", "warning", "error")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"lakegate {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """lakegate: a Delta Sharing server."""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    config: Path = ConfigOption,
    host: str | None = typer.Option(None, help="Listen address (overrides the file)."),
    port: int | None = typer.Option(None, help="Listen port, 0 to 65535 (overrides the file)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    log_format: str | None = typer.Option(None, help="json or text (overrides the file's logFormat)."),
    workers: str | None = typer.Option(
        None,
        help="Processes serving the port: a number, or auto (one per core); overrides the file's workers.",
    ),
) -> None:
    """Serve the shares of a configuration file (its database is migrated and synced first)."""
    from lakegate._memory import one_arena

    one_arena()  # before any thread starts: before pyarrow is imported (lakegate._memory)
    import uvicorn

    from lakegate.config import MAX_WORKERS, load_config
    from lakegate.http.connection import guarded_protocol
    from lakegate.http.iceberg import PATH as ICEBERG_PATH
    from lakegate.logs import FORMATS, configure_logging
    from lakegate.server import build_app
    from lakegate.shutdown import CutOffQuietly, Server
    from lakegate.workers import default_workers, import_thread_backend, serve_workers

    # Checked here, one line each: typer's own range errors are a box of lines, and uvicorn would take a bad
    # level with a traceback, and a port past 65535 modulo 65536.
    if log_format is not None and log_format not in FORMATS:
        _fail(f"--log-format must be one of {', '.join(FORMATS)}")
    if log_level.lower() not in LOG_LEVELS:
        _fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not '{log_level}'")
    log_level = log_level.lower()
    if port is not None and not 0 <= port <= 65535:
        _fail(f"--port must be 0 to 65535, not {port}")
    if (
        workers is not None
        and workers != "auto"
        and not (workers.isascii() and workers.isdigit() and 1 <= int(workers) <= MAX_WORKERS)
    ):
        _fail(f"--workers must be a number from 1 to {MAX_WORKERS}, or auto, not '{workers}'")
    configure_logging(log_format or "json", log_level)
    try:
        settings = load_config(config)
        processes = None if workers is None else workers if workers == "auto" else int(workers)
        overrides = {
            k: v for k, v in (("host", host), ("port", port), ("workers", processes)) if v is not None
        }
        if overrides:
            settings = settings.model_copy(update=overrides)
        if log_format is None:
            configure_logging(settings.log_format, log_level)
        application = build_app(settings, writer_process=True)
    except ConfigError as exc:
        _fail(str(exc))
        return
    try:
        ssl_kwargs = ssl_options(settings.ssl, config.parent, settings.host)
    except ConfigError as exc:
        _fail(str(exc))
        return
    # uvicorn logs through lakegate's handlers (log_config=None); its access log is replaced by lakegate's,
    # which omits query strings (signed URLs). On SIGTERM it stops accepting, then drains requests in flight
    # (Ctrl-C: one second); lakegate.shutdown makes both exit 0 with no traceback.
    server_config = uvicorn.Config(
        CutOffQuietly(application),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds or None,
        # Slow or oversized requests: a deadline and a size bound for headers (bodies: lakegate.http.body).
        http=guarded_protocol(
            settings.request_timeout_seconds or None,
            settings.max_request_header_bytes,
            settings.endpoint + ICEBERG_PATH,
        ),
        h11_max_incomplete_event_size=settings.max_request_header_bytes,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        ws="none",  # no WebSocket route: upgrade requests are plain HTTP requests
        **ssl_kwargs,
    )
    count = default_workers() if settings.workers == "auto" else settings.workers
    if count == 1:
        import_thread_backend()  # forked workers import it before the fork (workers.load_before_forking)
        Server(server_config).run()
        return
    raise typer.Exit(serve_workers(server_config, count))


@app.command()
def demo(
    directory: Path = typer.Option(Path("demo"), help="Where to write the demo tables, config and profile."),
    port: int = typer.Option(8080),
    run: bool = typer.Option(True, help="Start the server after building the demo."),
) -> None:
    """Build demo Delta tables on local disk, write demo/server.yaml and demo/profile.share, and serve them."""
    from lakegate.demo import build_demo, demo_admin_token

    if run and not 0 < port <= 65535:
        _fail(f"--port must be 1 to 65535, not {port}")
    if run and not _port_free(DEMO_HOST, port):
        # Checked before anything is built or "Demo ready" is printed: a busy port is one line, exit 2.
        _fail(
            f"port {port} on {DEMO_HOST} is in use; pick another: `make run PORT=9090` or `lakegate demo --port 9090`"
        )
    config_path, profile_path, tables = build_demo(directory.resolve(), port)
    admin_token = demo_admin_token(config_path)
    table = tables[0]
    typer.echo(
        f"\nDemo ready: {config_path}\nRead a table with the official client (pip install delta-sharing):\n\n"
        f"    import delta_sharing\n"
        f'    url = "{profile_path}#{table}"\n'
        f"    print(delta_sharing.load_as_pandas(url))\n\n"
        f"Web console: http://{DEMO_HOST}:{port}/console\n"
        f"    admin token (sign in with it): {admin_token}\n"
    )
    if run:
        sys.stdout.flush()
        serve(config=config_path, host=None, port=None, log_level="info", log_format="text", workers=None)


@app.command()
def healthcheck(
    config: Path = ConfigOption,
    timeout: float = typer.Option(4.0, help="Seconds to wait for the answer."),
) -> None:
    """Exit 0 when the server of this configuration answers /healthz on this machine, else 1 with one line
    (the container image's HEALTHCHECK: it follows the configured port, LAKEGATE_PORT and TLS)."""
    import ssl
    import urllib.request

    from lakegate.config import load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        _fail(str(exc))
        return
    # A wildcard listen address is reached through the loopback interface.
    wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104  - compared, not bound
    host = wildcards.get(settings.host, settings.host)
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.ssl is not None else "http"
    url = f"{scheme}://{host}:{settings.port}/healthz"
    # A liveness probe of this machine's own server: its certificate may be self-signed or name another host.
    context = ssl.create_default_context() if scheme == "https" else None
    if context is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:  # noqa: S310  - an http(s) URL built above
            status = answer.status
    except OSError as exc:  # refused, timed out, or an HTTP error status (HTTPError is an OSError)
        typer.echo(f"unhealthy: {url}: {getattr(exc, 'reason', exc)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"healthy: {url} answered {status}")


DEMO_HOST = "127.0.0.1"


def _port_free(host: str, port: int) -> bool:
    """Whether the server could listen on host:port now (bound as uvicorn binds: with SO_REUSEADDR)."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def main() -> None:
    app()
