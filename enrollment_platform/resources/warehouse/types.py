"""Arrow type -> SQL column type, per dialect (DuckDB, PostgreSQL, Redshift).

Lists never reach a warehouse table (they are joined into text, see model.py); `staging_type` says how each
dialect holds a list while it is staged: DuckDB as a native list, PostgreSQL as text (joined in Arrow before the
COPY), Redshift as SUPER (COPY … FORMAT AS PARQUET loads a Parquet list into SUPER).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

TypeMap = list[tuple[Callable[[pa.DataType], bool], str]]

_COMMON: TypeMap = [
    (pa.types.is_boolean, "BOOLEAN"),
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t), "SMALLINT"),
    (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "INTEGER"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "BIGINT"),
    (pa.types.is_float32, "REAL"),
    (pa.types.is_float64, "DOUBLE PRECISION"),
    (pa.types.is_date, "DATE"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMPTZ"),
    (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_time, "TIME"),
]

DUCKDB: TypeMap = [
    (pa.types.is_int8, "TINYINT"),
    (pa.types.is_uint64, "UBIGINT"),
    (pa.types.is_float32, "FLOAT"),
    (pa.types.is_float64, "DOUBLE"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is None and t.unit == "ns", "TIMESTAMP_NS"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMP WITH TIME ZONE"),
    *_COMMON,
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t), "VARCHAR"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "BLOB"),
]

POSTGRES: TypeMap = [
    (pa.types.is_uint64, "NUMERIC(20, 0)"),
    *_COMMON,
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t), "TEXT"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "BYTEA"),
]

REDSHIFT: TypeMap = [
    (pa.types.is_uint64, "DECIMAL(20, 0)"),
    *_COMMON,
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t), "VARCHAR(65535)"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "VARBYTE(1024000)"),
]


def sql_type(mapping: TypeMap, data_type: pa.DataType, dialect: str) -> str:
    """The SQL type of an Arrow type in one dialect; a type with no mapping is an error naming both."""
    if pa.types.is_decimal(data_type):
        return f"DECIMAL({data_type.precision}, {data_type.scale})"
    for matches, name in mapping:
        if matches(data_type):
            return name
    raise TypeError(f"no {dialect} column type for Arrow type {data_type}")
