"""Demo tables on local disk, a server configuration and a recipient profile: `make run` / `lakegate demo`."""

from __future__ import annotations

import json
import secrets
from datetime import date
from pathlib import Path

import yaml

from lakegate.catalog.bearer_tokens import profile as profile_content
from lakegate.secret_files import write_private


def _write_tables(tables: Path) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    sales = tables / "sales"
    if not (sales / "_delta_log").exists():
        rows = pa.table(
            {
                "id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
                "region": ["emea", "emea", "amer", "amer", "apac", "apac"],
                "amount": [10.5, 20.0, 7.25, 99.9, 42.0, 3.5],
                "day": [date(2026, 1, d) for d in (1, 2, 3, 4, 5, 6)],
            }
        )
        write_deltalake(
            sales, rows, partition_by=["region"], configuration={"delta.enableChangeDataFeed": "true"}
        )
        more = pa.table(
            {
                "id": pa.array([7, 8], pa.int64()),
                "region": ["emea", "amer"],
                "amount": [1.0, 2.0],
                "day": [date(2026, 2, 1), date(2026, 2, 2)],
            }
        )
        write_deltalake(sales, more, mode="append")
        table = DeltaTable(sales)
        table.delete("id = 2")
        table.update(predicate="id = 4", updates={"amount": "100.0"})
    customers = tables / "customers"
    if not (customers / "_delta_log").exists():
        write_deltalake(
            customers,
            pa.table(
                {
                    "customer_id": pa.array([1, 2, 3], pa.int64()),
                    "name": ["Ada", "Grace", "Edsger"],
                    "country": ["UK", "US", "NL"],
                }
            ),
        )


def build_demo(directory: Path, port: int = 8080) -> tuple[Path, Path, list[str]]:
    """Returns (config path, profile path, table names as share.schema.table)."""
    directory.mkdir(parents=True, exist_ok=True)
    tables = directory / "tables"
    _write_tables(tables)
    config_path = directory / "server.yaml"
    profile_path = directory / "profile.share"
    if config_path.exists():
        token = yaml.safe_load(config_path.read_text())["authorization"]["bearerToken"]
        signing_key = yaml.safe_load(config_path.read_text()).get("tokenSigningKey") or secrets.token_urlsafe(
            32
        )
    else:
        token, signing_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    config = {
        "version": 1,
        "host": "127.0.0.1",
        "port": port,
        "endpoint": "/delta-sharing",
        "authorization": {"bearerToken": token},
        "tokenSigningKey": signing_key,
        "console": {"enabled": True},
        "activationLinks": {"providerName": "lakegate demo"},
        "shares": [
            {
                "name": "demo",
                "schemas": [
                    {
                        "name": "default",
                        "tables": [
                            {"name": "sales", "location": str(tables / "sales"), "historyShared": True},
                            {"name": "customers", "location": str(tables / "customers")},
                        ],
                    }
                ],
            }
        ],
    }
    write_private(config_path, yaml.safe_dump(config, sort_keys=False))
    profile = profile_content(f"http://127.0.0.1:{port}/delta-sharing", token, expires_at=None)
    write_private(profile_path, json.dumps(profile, indent=2) + "\n")
    return config_path, profile_path, ["demo.default.sales", "demo.default.customers"]


def demo_admin_token(config_path: Path) -> str:
    """The demo console's admin token: kept in admin-token beside the configuration (owner-only), made again
    when the database no longer accepts it (a deleted database, a revoked token)."""
    from lakegate.catalog.admins import AdminTokens
    from lakegate.catalog.migrate import open_database
    from lakegate.config import load_config
    from lakegate.exceptions import UnauthenticatedError

    path = config_path.parent / "admin-token"
    db = open_database(load_config(config_path))
    try:
        tokens = AdminTokens(db)
        if path.exists():
            try:
                tokens.authenticate(path.read_text().strip())
                return path.read_text().strip()
            except UnauthenticatedError:
                pass
        _, token = tokens.create("demo")
        write_private(path, token + "\n")
        return token
    finally:
        db.close()
