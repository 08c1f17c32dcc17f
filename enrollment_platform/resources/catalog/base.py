"""The data catalog interface: register a table like a Glue crawler, with one schema-drift policy for all twins."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import dagster as dg

from enrollment_platform.config import SCHEMA_DRIFT_POLICIES, ConfigError, DatasetSpec, schema_drift_policy
from enrollment_platform.resources.catalog.drift import Drift, SchemaDriftError, detect_drift, evolve
from enrollment_platform.resources.catalog.model import SCHEMA_VERSION, Column, Partition, TableDefinition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """What registering a table did: `created`, `unchanged`, `evolved` or `warned` (drift kept out)."""

    database: str
    table: str
    action: str
    policy: str
    drift: Drift
    columns: tuple[Column, ...]
    partitions_added: tuple[tuple[str, ...], ...] = ()

    def to_dict(self) -> dict:
        found = asdict(self)
        return found | {"drift": self.drift.to_dict(), "columns": [c.to_dict() for c in self.columns]}


class Catalog(dg.ConfigurableResource):
    """Tables of the lake's zones in one database. Twins implement storage; registration and drift are shared."""

    database: str = "enrollment"

    def register_table(
        self,
        table: TableDefinition,
        partitions: Sequence[Partition] = (),
        spec: DatasetSpec | None = None,
        policy: str | None = None,
        note: str = "",
    ) -> Registration:
        """Create the table, or compare its columns with the files' and apply the drift policy (`evolve`, `warn`,
        `fail`; default from config and $ENROLLMENT_SCHEMA_DRIFT); then add the partitions it does not have.
        `spec` lets renames between aliases of one column pass; `note` (the batch) marks what changed when."""
        policy = _checked(policy or schema_drift_policy())
        note = note or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        existing = self.get_table(table.name)
        if existing is None:
            stored, action, drift = (
                replace(table, parameters=table.parameters | {SCHEMA_VERSION: "1"}),
                "created",
                Drift(),
            )
            self.create_table(stored)
        else:
            drift = detect_drift(existing.active_columns, table.columns, spec)
            stored, action = self._apply(existing, table, drift, policy, note)
        added = self._add_new_partitions(stored, partitions)
        return Registration(self.database, table.name, action, policy, drift, stored.columns, added)

    def _apply(
        self, existing: TableDefinition, table: TableDefinition, drift: Drift, policy: str, note: str
    ) -> tuple[TableDefinition, str]:
        """The table after the policy, and the action taken."""
        if not drift.changed and existing.location == table.location:
            return existing, "unchanged"
        where = f"{self.database}.{table.name}"
        if drift.found and policy == "fail":
            raise SchemaDriftError(self.database, table.name, drift)
        if drift.found and policy == "warn":
            log.warning("%s: schema drift kept out of the table (policy 'warn'): %s", where, drift.describe())
            return existing, "warned"
        evolved = evolve(existing, table, drift, note)
        self.update_table(evolved)
        log.info("%s: table evolved: %s", where, drift.describe())
        return evolved, "evolved"

    def _add_new_partitions(
        self, table: TableDefinition, partitions: Sequence[Partition]
    ) -> tuple[tuple[str, ...], ...]:
        """Add the partitions the table does not have yet (each once); return their values."""
        for partition in partitions:
            if len(partition.values) != len(table.partition_keys):
                raise ValueError(
                    f"{self.database}.{table.name}: partition {partition.values} does not match the partition "
                    f"keys {[k.name for k in table.partition_keys]}"
                )
        known = self.partition_values(table.name) if partitions else set()
        new = list({p.values: p for p in partitions if p.values not in known}.values())
        if new:
            self.add_partitions(table, new)
        return tuple(p.values for p in new)

    @abstractmethod
    def get_table(self, name: str) -> TableDefinition | None:
        """The table as the catalog holds it, or None."""

    @abstractmethod
    def create_table(self, table: TableDefinition) -> None:
        """Store a new table (creating the database when missing)."""

    @abstractmethod
    def update_table(self, table: TableDefinition) -> None:
        """Replace a table's definition, keeping the previous one as a version."""

    @abstractmethod
    def partition_values(self, name: str) -> set[tuple[str, ...]]:
        """The values of every partition of the table."""

    @abstractmethod
    def add_partitions(self, table: TableDefinition, partitions: Sequence[Partition]) -> None:
        """Add partitions, each with the table's columns and format at its own location."""


def _checked(policy: str) -> str:
    if policy not in SCHEMA_DRIFT_POLICIES:
        raise ConfigError(f"schema drift policy {policy!r} is not one of {', '.join(SCHEMA_DRIFT_POLICIES)}")
    return policy
