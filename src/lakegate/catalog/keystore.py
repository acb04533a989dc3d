"""The token signing master key kept in the database when the configuration gives none.

Page tokens, refresh tokens and local file URLs are signed with it, so every replica must hold the same key:
the first server to start creates it (under the startup lock), the others read it. Anyone who can read the
database can read it, which is why the SQLite file is created private and why `tokenSigningKey` in the
configuration (or LAKEGATE_TOKEN_SIGNING_KEY) takes precedence when set.
"""

from __future__ import annotations

import base64
import secrets

import sqlalchemy as sa

from lakegate.catalog.db import Database
from lakegate.catalog.models import Setting
from lakegate.config import ServerConfig

SIGNING_KEY = "token_signing_key"


def ensure_signing_key(conn: sa.Connection) -> None:
    found = conn.execute(sa.select(Setting.value).where(Setting.key == SIGNING_KEY)).scalar()
    if found is None:
        value = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        conn.execute(sa.insert(Setting).values(key=SIGNING_KEY, value=value))


def signing_key(db: Database, config: ServerConfig) -> bytes:
    if config.token_signing_key is not None:
        return config.token_signing_key.get_secret_value().encode()
    with db.read() as conn:
        value = conn.execute(sa.select(Setting.value).where(Setting.key == SIGNING_KEY)).scalar()
    if value is None:
        raise RuntimeError("no token signing key in the database: run `lakegate db upgrade`")
    return base64.urlsafe_b64decode(value)
