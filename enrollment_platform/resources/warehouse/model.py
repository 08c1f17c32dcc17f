"""The one definition of every warehouse table, dialect-free: columns with Arrow types, keys, dimension references.

A table is defined by its entry in config `warehouse:` (natural key, surrogate key, references) and by the Arrow
schema of the curated Parquet file it is loaded from. The dialects (`dialects.py`) turn a definition into SQL.

How curated columns become warehouse columns:
- a star table (dimension or fact) renames the lineage columns `_source_file`, `_source_row`, `_flags` to
  `source_file`, `source_row`, `dq_flags`, placed last;
- a fact swaps each natural reference (`student_id`) for the dimension's surrogate key (`student_key`), placed
  first, right after the fact's own surrogate key;
- every list column becomes text, its items joined with `LIST_SEPARATOR` (`dq_flags`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from enrollment_platform.config import DimensionSpec

LINEAGE = {"_source_file": "source_file", "_source_row": "source_row", "_flags": "dq_flags"}
LIST_SEPARATOR = "; "
STATE_VERSION = "state_version"  # a curated state file's footer key: a new id each time the file is rewritten
LOAD_STATE = "_load_state"  # the warehouse table recording which state version each table holds
SURROGATE_TYPE = pa.int64()


@dataclass(frozen=True)
class Column:
    """A column of the curated file (the staging table): name and Arrow type."""

    name: str
    type: pa.DataType

    @property
    def is_list(self) -> bool:
        return is_list(self.type)


@dataclass(frozen=True)
class Reference:
    """A fact's dimension reference: `key` (e.g. student_key) looked up in `dimension` by `via` (student_id)."""

    key: str
    dimension: str
    via: str


@dataclass(frozen=True)
class TargetColumn:
    """A column of the warehouse table and where its value comes from: a staged column or a dimension lookup."""

    name: str
    type: pa.DataType
    source: str | None = None  # the staged column (None for a dimension key)
    reference: int | None = None  # index into TableDef.references for a dimension key
    joins_list: bool = False  # the staged column is a list, joined into text


@dataclass(frozen=True)
class TableDef:
    """One warehouse table. `natural_key`/`surrogate_key` are None for a run log table (dq_results)."""

    name: str
    staged: tuple[Column, ...]
    columns: tuple[TargetColumn, ...]
    natural_key: str | None = None
    surrogate_key: str | None = None
    references: tuple[Reference, ...] = ()

    @property
    def staging(self) -> str:
        return f"{self.name}__staged"

    @property
    def keyed(self) -> str:
        return f"{self.name}__keyed"

    @property
    def changes(self) -> str:
        return f"{self.name}__changes"

    @property
    def new_keys(self) -> str:
        return f"{self.name}__new_keys"

    def removed_keys(self) -> TableDef:
        """Where a batch's removed keys are staged (`<table>__removed__staged`): one column, the natural key."""
        natural = next(c for c in self.staged if c.name == self.natural_key)
        return TableDef(f"{self.name}__removed", (natural,), ())

    @property
    def table_columns(self) -> list[TargetColumn]:
        """Every column of the warehouse table, the surrogate key first."""
        key = [TargetColumn(self.surrogate_key, SURROGATE_TYPE)] if self.surrogate_key else []
        return [*key, *self.columns]

    @property
    def updatable(self) -> list[str]:
        """The columns an upsert compares and updates: all but the natural and surrogate keys."""
        return [c.name for c in self.columns if c.name != self.natural_key]


def is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type)


def warehouse_type(data_type: pa.DataType) -> pa.DataType:
    """The Arrow type a curated column has in the warehouse: lists become text, an all-null column text."""
    if is_list(data_type) or pa.types.is_null(data_type):
        return pa.string()
    return data_type


def read_schema(parquet: str) -> pa.Schema:
    """The Arrow schema of a Parquet file (a local path or an s3:// URI; only the footer is read)."""
    if "://" in parquet:
        filesystem, path = pafs.FileSystem.from_uri(parquet)
        return pq.read_schema(path, filesystem=filesystem)
    return pq.read_schema(parquet)


def staged_columns(schema: pa.Schema) -> tuple[Column, ...]:
    return tuple(Column(field.name, field.type) for field in schema)


def _plain(column: Column, name: str | None = None) -> TargetColumn:
    return TargetColumn(name or column.name, warehouse_type(column.type), column.name, joins_list=column.is_list)


def star_table(spec: DimensionSpec, schema: pa.Schema, lineage: bool = True) -> TableDef:
    """A dimension or fact (`lineage`: rename the lineage columns) or a plain keyed table such as student_pii."""
    staged = staged_columns(schema)
    references = tuple(Reference(key, dim, via) for key, (dim, via) in spec.references.items())
    replaced = {ref.via for ref in references}
    renamed = LINEAGE if lineage else {}
    keys = [TargetColumn(ref.key, SURROGATE_TYPE, reference=i) for i, ref in enumerate(references)]
    body = [_plain(c) for c in staged if c.name not in replaced and c.name not in renamed]
    tail = [_plain(c, renamed[c.name]) for name in renamed for c in staged if c.name == name]
    return TableDef(spec.table, staged, (*keys, *body, *tail), spec.natural_key, spec.surrogate_key, references)


def log_table(name: str, schema: pa.Schema) -> TableDef:
    """A run log table (dq_results): the file's columns as they are, no keys; rows are replaced per run."""
    staged = staged_columns(schema)
    return TableDef(name, staged, tuple(_plain(c) for c in staged))
