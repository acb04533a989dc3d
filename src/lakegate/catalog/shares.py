"""Managing shares and their tables live: create, list, show, delete shares; add and remove tables.

Shares declared in the YAML belong to the YAML (it is applied again at every start), so they cannot be changed
here: the answer is a 409 CONFLICT that says to edit the file. Shares made here get a UUID as their id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lakegate.catalog.base import TableInfo, check_name
from lakegate.catalog.db import Database, utcnow
from lakegate.catalog.models import TABLES, Grant, Recipient, Share, SharedSchema, SharedTable
from lakegate.catalog.recipients import share_id
from lakegate.catalog.sync import CONFIG
from lakegate.exceptions import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    InvalidParameterError,
    NotFoundError,
)
from lakegate.preflight import check_location
from lakegate.timestamps import iso

MAX_PROPERTIES = 50  # protocol v1.4.0 limits: ≤50 pairs, key ≤255, value ≤1000


def _check_properties(properties: dict[str, str]) -> dict[str, str]:
    if len(properties) > MAX_PROPERTIES:
        raise InvalidParameterError(f"a share has at most {MAX_PROPERTIES} properties")
    for key, value in properties.items():
        if (
            not isinstance(key, str)
            or not isinstance(value, str)
            or not key
            or len(key) > 255
            or len(value) > 1000
        ):
            raise InvalidParameterError(
                "property keys are 1 to 255 characters, values at most 1000 characters"
            )
    return dict(properties)


def split_table_name(full: str) -> tuple[str, str, str]:
    """SHARE.SCHEMA.TABLE; the share may itself contain dots, schema and table may not."""
    share, _, rest = full.rpartition(".")
    share, _, schema = share.rpartition(".")
    if not share or not schema or not rest:
        raise InvalidParameterError(f"'{full}' is not SHARE.SCHEMA.TABLE")
    return share, schema, rest


def table_info(share: str, table: dict[str, Any]) -> TableInfo:
    """A table of `Shares.show(share)["tables"]` as the services take it (the banner and the console read it)."""
    schema, _, name = table["name"][len(share) + 1 :].partition(".")
    return TableInfo(
        name=name,
        schema=schema,
        share=share,
        location=table["location"],
        auxiliary_locations=tuple(table["auxiliaryLocations"]),
        history_shared=table["historyShared"],
        start_version=table["startVersion"],
    )


class Shares:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(
        self,
        name: str,
        display_name: str | None = None,
        comment: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        check_name("share", name)
        if display_name is not None and len(display_name) > 255:
            raise InvalidParameterError("displayName is at most 255 characters")
        if comment is not None and len(comment) > 65536:
            raise InvalidParameterError("comment is at most 65536 characters")
        props = _check_properties(properties or {})
        try:
            with self.db.write() as conn:
                if (
                    conn.execute(sa.select(Share.id).where(Share.name_key == name.lower())).first()
                    is not None
                ):
                    raise AlreadyExistsError(f"share '{name}' already exists")
                position = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(Share.position), -1))
                ).scalar_one()
                conn.execute(
                    sa.insert(Share).values(
                        name=name,
                        name_key=name.lower(),
                        public_id=str(uuid.uuid4()),
                        display_name=display_name,
                        comment=comment,
                        properties=props,
                        managed_by="api",
                        position=position + 1,
                        created_at=self.clock(),
                    )
                )
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(f"share '{name}' already exists") from None
        return self.show(name)

    def delete(self, name: str) -> dict[str, Any]:
        shown = self.show(name)
        with self.db.write() as conn:
            self._editable(conn, name)
            conn.execute(sa.delete(Share).where(Share.name_key == name.lower()))
        return shown

    def add_table(
        self,
        share: str,
        schema: str,
        table: str,
        location: str,
        *,
        history_shared: bool = False,
        start_version: int = 0,
        auxiliary_locations: Sequence[str] = (),
    ) -> dict[str, Any]:
        check_name("schema", schema, dots=False)
        check_name("table", table, dots=False)
        for key, loc in (("location", location), *(("auxiliaryLocations", a) for a in auxiliary_locations)):
            try:
                check_location(key, loc)  # the stores this server can open, with the extras installed
            except ConfigError as exc:
                raise InvalidParameterError(exc.message) from None
        if not 0 <= start_version < 2**63:
            raise InvalidParameterError("startVersion must be 0 or more (a 64-bit version number)")
        with self.db.write() as conn:
            sid = self._editable(conn, share)
            schema_id = conn.execute(
                sa.select(SharedSchema.id).where(
                    SharedSchema.share_id == sid, SharedSchema.name_key == schema.lower()
                )
            ).scalar()
            if schema_id is None:
                schema_id = conn.execute(
                    sa.insert(SharedSchema)
                    .values(
                        share_id=sid,
                        name=schema,
                        name_key=schema.lower(),
                        position=_next(conn, SharedSchema, SharedSchema.share_id, sid),
                    )
                    .returning(SharedSchema.id)
                ).scalar_one()
            taken = conn.execute(
                sa.select(SharedTable.id).where(
                    SharedTable.schema_id == schema_id, SharedTable.name_key == table.lower()
                )
            ).first()
            if taken is not None:
                raise AlreadyExistsError(f"table '{share}.{schema}.{table}' already exists")
            conn.execute(
                sa.insert(SharedTable).values(
                    schema_id=schema_id,
                    name=table,
                    name_key=table.lower(),
                    public_id=str(uuid.uuid4()),
                    location=location,
                    auxiliary_locations=list(auxiliary_locations),
                    history_shared=history_shared,
                    start_version=start_version,
                    position=_next(conn, SharedTable, SharedTable.schema_id, schema_id),
                )
            )
        return self.show(share)

    def update_table(
        self,
        share: str,
        schema: str,
        table: str,
        *,
        history_shared: bool | None = None,
        start_version: int | None = None,
    ) -> dict[str, Any]:
        """Change whether a table's history is shared and the version it is shared from (None: unchanged)."""
        if start_version is not None and not 0 <= start_version < 2**63:
            raise InvalidParameterError("startVersion must be 0 or more (a 64-bit version number)")
        values: dict[str, Any] = {}
        if history_shared is not None:
            values["history_shared"] = history_shared
        if start_version is not None:
            values["start_version"] = start_version
        with self.db.write() as conn:
            found = self._table_id(conn, share, schema, table)
            if values:
                conn.execute(sa.update(SharedTable).where(SharedTable.id == found.id).values(**values))
        return self.show(share)

    def remove_table(self, share: str, schema: str, table: str) -> dict[str, Any]:
        with self.db.write() as conn:
            found = self._table_id(conn, share, schema, table)
            conn.execute(sa.delete(SharedTable).where(SharedTable.id == found.id))
            left = conn.execute(
                sa.select(SharedTable.id).where(SharedTable.schema_id == found.schema_id)
            ).first()
            if left is None:  # a schema exists only through its tables when made here
                conn.execute(sa.delete(SharedSchema).where(SharedSchema.id == found.schema_id))
        return self.show(share)

    def all(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            names = conn.execute(sa.select(Share.name).order_by(Share.position, Share.id)).scalars().all()
        return [self.show(n, tables=False) for n in names]

    def show(self, name: str, tables: bool = True) -> dict[str, Any]:
        with self.db.read() as conn:
            share = conn.execute(sa.select(Share).where(Share.name_key == name.lower())).first()
            if share is None:
                raise NotFoundError(f"share '{name}' not found")
            rows = conn.execute(
                sa.select(SharedSchema.name.label("schema"), *TABLES.c)
                .join(TABLES, TABLES.c.schema_id == SharedSchema.id, isouter=True)
                .where(SharedSchema.share_id == share.id)
                .order_by(SharedSchema.position, SharedSchema.id, TABLES.c.position, TABLES.c.id)
            ).all()
            recipients = (
                conn.execute(
                    sa.select(Recipient.name)
                    .join(Grant, Grant.recipient_id == Recipient.id)
                    .where(Grant.share_id == share.id)
                    .order_by(Recipient.name_key)
                )
                .scalars()
                .all()
            )
        out: dict[str, Any] = {
            "name": share.name,
            "id": share.public_id,
            "displayName": share.display_name,
            "comment": share.comment,
            "properties": share.properties or {},
            "managedBy": share.managed_by,
            "createdAt": iso(share.created_at),
            "schemas": list(dict.fromkeys(r.schema for r in rows)),
            "recipients": list(recipients),
        }
        table_rows = [r for r in rows if r.name is not None]
        out["tableCount"] = len(table_rows)
        if tables:
            out["tables"] = [
                {
                    "name": f"{share.name}.{r.schema}.{r.name}",
                    "id": r.public_id,
                    "location": r.location,
                    "auxiliaryLocations": r.auxiliary_locations or [],
                    "historyShared": r.history_shared,
                    "startVersion": r.start_version,
                }
                for r in table_rows
            ]
        return out

    def _table_id(self, conn: sa.Connection, share: str, schema: str, table: str) -> Any:
        """(id, schema_id) of a table of an editable share; NotFoundError if there is none."""
        sid = self._editable(conn, share)
        found = conn.execute(
            sa.select(SharedTable.id, SharedSchema.id.label("schema_id"))
            .join(SharedSchema, SharedSchema.id == SharedTable.schema_id)
            .where(
                SharedSchema.share_id == sid,
                SharedSchema.name_key == schema.lower(),
                SharedTable.name_key == table.lower(),
            )
        ).first()
        if found is None:
            raise NotFoundError(f"table '{share}.{schema}.{table}' not found")
        return found

    @staticmethod
    def _editable(conn: sa.Connection, name: str) -> int:
        sid = share_id(conn, name)
        managed_by = conn.execute(sa.select(Share.managed_by).where(Share.id == sid)).scalar_one()
        if managed_by == CONFIG:
            raise ConflictError(f"share '{name}' is declared in the configuration file: change it there")
        return sid


def _next(conn: sa.Connection, model: Any, parent: Any, parent_id: int) -> int:
    """The position after the last child of a parent: new schemas and tables list last."""
    return int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(model.position), -1) + 1).where(parent == parent_id)
        ).scalar_one()
    )
