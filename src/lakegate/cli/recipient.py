"""`lakegate recipient`: what a recipient can do with a profile file — list the tables it may read (with their
access modes) and print the first rows of one, in directory mode when the table offers it."""

from __future__ import annotations

import json

import typer

from lakegate.cli.options import key_values

app = typer.Typer(help="Read shared tables as a recipient (profile files).", no_args_is_help=True)


@app.command()
def tables(
    profile: str = typer.Argument(
        ...,
        help="Profile file (version 1 bearer token, or version 2: basic, OAuth client credentials, private-key JWT).",
    ),
    output: str = typer.Option("text", "--output", "-o", help="text or json."),
) -> None:
    """List every table of every share the profile may read, with its access modes."""
    from lakegate.client import ClientError, Profile, RestClient

    try:
        client = RestClient(Profile.load(profile))
        rows = [t for s in client.list_shares() for t in client.list_all_tables(s["name"])]
    except (ClientError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    for t in rows:
        modes = ",".join(t.get("accessModes") or ["url"])
        where = f"  {t['location']}" if t.get("location") else ""
        typer.echo(f"{t['share']}.{t['schema']}.{t['name']}  [{modes}]{where}")


@app.command()
def head(
    table: str = typer.Argument(..., help="PROFILE#share.schema.table"),
    rows: int = typer.Option(10, "--rows", "-n", help="How many rows to print."),
    option: list[str] | None = typer.Option(
        None, "--storage-option", "--option", help="deltalake storage option KEY=VALUE (endpoint, region…)."
    ),
    version: int | None = typer.Option(None, help="Table version (time travel)."),
) -> None:
    """Print the first rows of a table: directory mode when offered, else URL mode. Only the files holding
    those rows are read (the limit goes to the server as limitHint; files are read one at a time)."""
    from lakegate.client import ClientError, SharedTable, load_as_pandas
    from lakegate.client.table import first_rows

    if rows < 0:
        typer.echo(f"error: --rows must be 0 or more, not {rows}", err=True)
        raise typer.Exit(2)
    try:
        shared = SharedTable(table, key_values(option or [], "--storage-option"))
        mode = "dir" if shared.has_dir_access else "url"
        frame = (
            first_rows(shared.table(version), rows).to_pandas()
            if mode == "dir"
            else load_as_pandas(table, version=version, limit=rows)
        )
    except (ClientError, ValueError, OSError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"# first {len(frame)} rows, read in {mode} mode")
    typer.echo(frame.to_string(index=False))
