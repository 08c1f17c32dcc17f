"""Table schemas as a Glue crawler infers them: Parquet footers (Arrow types mapped to Hive types) and the
headers of raw CSV and JSON-lines files (every column a string, as the raw zone is read)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from enrollment_platform.config import normalize_header
from enrollment_platform.resources.catalog.model import Column
from enrollment_platform.transforms.read_raw import sniff_encoding

JSON_SAMPLE_LINES = 1000  # JSON lines read for keys (a crawler samples the start of a file, too)

_SIMPLE = [
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "tinyint"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "int"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_uint8, "smallint"),
    (pa.types.is_uint16, "int"),
    (pa.types.is_uint32, "bigint"),
    (pa.types.is_uint64, "decimal(20,0)"),
    (pa.types.is_float16, "float"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_date, "date"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_binary, "binary"),
    (pa.types.is_large_binary, "binary"),
    (pa.types.is_fixed_size_binary, "binary"),
    (pa.types.is_null, "string"),  # an all-NULL column: Athena has no void type
]


def hive_type(arrow_type: pa.DataType) -> str:
    """The Hive/Glue type of an Arrow type; what Hive cannot express (time, intervals) becomes string."""
    if pa.types.is_dictionary(arrow_type):
        return hive_type(arrow_type.value_type)
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return f"array<{hive_type(arrow_type.value_type)}>"
    if pa.types.is_map(arrow_type):
        return f"map<{hive_type(arrow_type.key_type)},{hive_type(arrow_type.item_type)}>"
    if pa.types.is_struct(arrow_type):
        fields = ",".join(f"{f.name.lower()}:{hive_type(f.type)}" for f in arrow_type)
        return f"struct<{fields}>"
    for matches, name in _SIMPLE:
        if matches(arrow_type):
            return name
    return "string"


def parquet_columns(path: Path | str) -> tuple[Column, ...]:
    """The columns of a Parquet file, from its footer (Hive lower-cases column names)."""
    return tuple(Column(f.name.lower(), hive_type(f.type)) for f in pq.read_schema(path))


def raw_columns(path: Path, data_format: str) -> tuple[Column, ...]:
    """The columns of a raw file: a Parquet footer's, else the CSV header or JSON keys as string columns.
    Raises read_raw.UnreadableFile for binary content."""
    if data_format == "parquet":
        return tuple(Column(normalize_header(c.name) or c.name, c.type) for c in parquet_columns(path))
    if path.stat().st_size == 0:
        return ()
    encoding = sniff_encoding(path)
    names = _csv_header(path, encoding) if data_format == "csv" else _json_keys(path, encoding)
    return tuple(Column(name, "string") for name in hive_names(names))


def hive_names(headers: Iterable[str]) -> list[str]:
    """Header cells as Hive column names: normalized (`Marks Scored` -> `marks_scored`), blanks named `col<i>`,
    repeats dropped."""
    names: list[str] = []
    for index, header in enumerate(headers):
        name = normalize_header(header) or f"col{index}"
        if name not in names:
            names.append(name)
    return names


def merge_columns(schemas: Iterable[Iterable[Column]]) -> tuple[Column, ...]:
    """The union of several files' columns, in order of first appearance; a column typed differently in two
    files becomes a string."""
    merged: dict[str, Column] = {}
    for schema in schemas:
        for column in schema:
            seen = merged.get(column.name)
            if seen is None:
                merged[column.name] = column
            elif seen.type != column.type:
                merged[column.name] = Column(column.name, "string")
    return tuple(merged.values())


def _csv_header(path: Path, encoding: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as handle:
        return next(csv.reader(handle), [])


def _json_keys(path: Path, encoding: str) -> list[str]:
    """Keys of the JSON objects among the first lines, in order of first appearance."""
    keys: dict[str, None] = {}
    with path.open(encoding=encoding) as handle:
        for line in islice(handle, JSON_SAMPLE_LINES):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                keys.update(dict.fromkeys(value))
    return list(keys)
