"""What a catalog holds: tables (columns, location, file format, partition keys) and their partitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ABSENT_SINCE = "enrollment.absent_since"  # column parameter: the files no longer have the column (it is kept)
SCHEMA_VERSION = "enrollment.schema_version"  # table parameter: 1 when created, +1 per evolution
LAST_SCHEMA_CHANGE = "enrollment.last_schema_change"  # table parameter: the last drift applied, as JSON


@dataclass(frozen=True)
class Column:
    """A column with its Hive/Glue type (`string`, `bigint`, `decimal(10,2)`, `array<string>`…)."""

    name: str
    type: str
    absent_since: str = ""  # set when the files stopped having the column: kept, never dropped

    def to_dict(self) -> dict[str, str]:
        found = {"name": self.name, "type": self.type}
        return found | ({"absent_since": self.absent_since} if self.absent_since else {})

    @classmethod
    def from_dict(cls, raw: dict[str, str]) -> Column:
        return cls(raw["name"], raw["type"], raw.get("absent_since", ""))


@dataclass(frozen=True)
class StorageFormat:
    """How an engine reads a table's files: Hive input/output formats and SerDe, as Glue crawlers set them."""

    input_format: str
    output_format: str
    serde: str
    serde_parameters: dict[str, str]
    table_parameters: dict[str, str]


_TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
FORMATS = {
    "parquet": StorageFormat(
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        {"serialization.format": "1"},
        {"classification": "parquet", "compressionType": "snappy"},
    ),
    "csv": StorageFormat(
        _TEXT_INPUT,
        _TEXT_OUTPUT,
        "org.apache.hadoop.hive.serde2.OpenCSVSerde",
        {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"},
        {"classification": "csv", "skip.header.line.count": "1", "compressionType": "none"},
    ),
    "json": StorageFormat(
        _TEXT_INPUT,
        _TEXT_OUTPUT,
        "org.openx.data.jsonserde.JsonSerDe",
        {"ignore.malformed.json": "true"},
        {"classification": "json", "compressionType": "none"},
    ),
}


@dataclass(frozen=True)
class TableDefinition:
    """A table: its files' location (a folder URI ending in `/`), format, columns and partition keys."""

    name: str
    location: str
    data_format: str  # a key of FORMATS
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...] = ()
    description: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data_format not in FORMATS:
            raise ValueError(f"table {self.name}: format {self.data_format!r} is not one of {sorted(FORMATS)}")
        clash = {c.name for c in self.columns} & {k.name for k in self.partition_keys}
        if clash:
            raise ValueError(f"table {self.name}: {sorted(clash)} are both columns and partition keys")

    @property
    def active_columns(self) -> tuple[Column, ...]:
        """The columns the files still have (absent ones are kept in the table, not compared)."""
        return tuple(c for c in self.columns if not c.absent_since)

    @property
    def storage(self) -> StorageFormat:
        return FORMATS[self.data_format]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "data_format": self.data_format,
            "columns": [c.to_dict() for c in self.columns],
            "partition_keys": [c.to_dict() for c in self.partition_keys],
            "description": self.description,
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TableDefinition:
        return cls(
            name=raw["name"],
            location=raw["location"],
            data_format=raw["data_format"],
            columns=tuple(Column.from_dict(c) for c in raw["columns"]),
            partition_keys=tuple(Column.from_dict(c) for c in raw.get("partition_keys", [])),
            description=raw.get("description", ""),
            parameters=dict(raw.get("parameters", {})),
        )


@dataclass(frozen=True)
class Partition:
    """One partition: its values, in the order of the table's partition keys, and its folder."""

    values: tuple[str, ...]
    location: str
