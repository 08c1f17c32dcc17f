"""The local twin of the data catalog: one JSON file per table, `<root>/<database>/<table>.json`, written
atomically, holding the table, its partitions and its history (every definition it had, like Glue's versions)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enrollment_platform.resources.catalog.base import Catalog
from enrollment_platform.resources.catalog.model import Partition, TableDefinition


class LocalCatalog(Catalog):
    """A catalog in a local folder (by default `<lake>/_catalog`); one file per table, so steps registering
    different tables never overwrite each other."""

    root: str

    def get_table(self, name: str) -> TableDefinition | None:
        document = self._read(name)
        return TableDefinition.from_dict(document["table"]) if document else None

    def create_table(self, table: TableDefinition) -> None:
        self._write(table.name, {"table": table.to_dict(), "partitions": [], "history": [_version(table)]})

    def update_table(self, table: TableDefinition) -> None:
        document = self._document(table.name)
        document["table"] = table.to_dict()
        document["history"].append(_version(table))
        self._write(table.name, document)

    def partition_values(self, name: str) -> set[tuple[str, ...]]:
        document = self._read(name) or {"partitions": []}
        return {tuple(p["values"]) for p in document["partitions"]}

    def add_partitions(self, table: TableDefinition, partitions: Sequence[Partition]) -> None:
        document = self._document(table.name)
        created = datetime.now(UTC).isoformat()
        document["partitions"] += [
            {
                "values": list(p.values),
                "location": p.location,
                "columns": [c.to_dict() for c in table.columns],
                "created": created,
            }
            for p in partitions
        ]
        self._write(table.name, document)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every definition the table had, oldest first."""
        return self._document(name)["history"]

    def _file(self, name: str) -> Path:
        return Path(self.root, self.database, f"{name}.json")

    def _read(self, name: str) -> dict[str, Any] | None:
        path = self._file(name)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def _document(self, name: str) -> dict[str, Any]:
        document = self._read(name)
        if document is None:
            raise KeyError(f"table {self.database}.{name} is not in the catalog at {self.root}")
        return document

    def _write(self, name: str, document: dict[str, Any]) -> None:
        """Replace the table's file atomically: a reader sees the old or the new file, never half of one."""
        target = self._file(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)


def _version(table: TableDefinition) -> dict[str, Any]:
    return {"at": datetime.now(UTC).isoformat(), "table": table.to_dict()}
