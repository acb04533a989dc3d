"""The `lakegate` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from lakegate.exceptions import ConfigError

app = typer.Typer(help="lakegate: a Delta Sharing server.", no_args_is_help=True, add_completion=False)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    config: Path = typer.Option(..., "--config", "-c", help="Server configuration (YAML)."),
    host: Optional[str] = typer.Option(None, help="Listen address (overrides the file)."),
    port: Optional[int] = typer.Option(None, help="Listen port (overrides the file)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve the shares of a configuration file."""
    import uvicorn

    from lakegate.config import load_config
    from lakegate.server import build_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_config(config)
        overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        if overrides:
            settings = settings.model_copy(update=overrides)
        application = build_app(settings)
    except ConfigError as exc:
        _fail(str(exc))
        return
    ssl_kwargs = _ssl_options(settings, config.parent)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level=log_level, **ssl_kwargs)


def _ssl_options(settings, base: Path) -> dict:  # noqa: ANN001
    ssl = settings.ssl
    if ssl is None:
        return {}
    if ssl.self_signed or not ssl.certificate_file:
        _fail("ssl: selfSigned is not supported; give certificateFile and certificateKeyFile")
    options = {"ssl_certfile": str(base / ssl.certificate_file), "ssl_keyfile": str(base / ssl.certificate_key_file)}
    if ssl.certificate_password_file:
        options["ssl_keyfile_password"] = (base / ssl.certificate_password_file).read_text().strip()
    return options


@app.command()
def demo(
    directory: Path = typer.Option(Path("demo"), help="Where to write the demo tables, config and profile."),
    port: int = typer.Option(8080),
    run: bool = typer.Option(True, help="Start the server after building the demo."),
) -> None:
    """Build demo Delta tables on local disk, write demo/server.yaml and demo/profile.share, and serve them."""
    from lakegate.demo import build_demo

    config_path, profile_path, tables = build_demo(directory.resolve(), port)
    table = tables[0]
    typer.echo(
        f"\nDemo ready: {config_path}\nRead a table with the official client (pip install delta-sharing):\n\n"
        f"    import delta_sharing\n"
        f"    url = \"{profile_path}#{table}\"\n"
        f"    print(delta_sharing.load_as_pandas(url))\n"
    )
    if run:
        sys.stdout.flush()
        serve(config=config_path, host=None, port=None, log_level="info")


def main() -> None:
    app()
