"""Staged raw text -> typed canonical columns (Spark backend of `transforms.standardize`).

Same semantics as the DuckDB SQL, spelled out where the engines differ:
- whitespace: `trim` removes spaces, then runs of RE2 `\\s` (tab, newline, form feed, return, space; not the
  vertical tab that Java's `\\s` also matches) fold to one space;
- numbers: DuckDB's cast to DOUBLE accepts `1_000` and rejects Java's `1.5d`/`1.5f` suffixes;
- dates: the catalog's strptime formats become full-match regular expressions (`%Y` is 1-4 digits, `%m %d %H %M
  %S` 1-2 digits, leading whitespace allowed) and the parts build the value; an impossible date is NULL.
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from enrollment_platform.config import Catalog, ColumnSpec, DatasetSpec
from enrollment_platform.transforms.spark.io import read_parquet, write_parquet
from enrollment_platform.transforms.standardize import _invalid_reason

RE2_SPACE = "[\\t\\n\\f\\r ]+"
_FIELDS = {"Y": ("y", "(\\d{1,4})"), "m": ("m", "(\\d{1,2})"), "d": ("d", "(\\d{1,2})")}
_FIELDS |= {"H": ("H", "(\\d{1,2})"), "M": ("M", "(\\d{1,2})"), "S": ("S", "(\\d{1,2})")}


def clean(column: Column) -> Column:
    """Trimmed text with inner whitespace runs folded to one space; empty becomes NULL."""
    folded = F.regexp_replace(F.trim(column), RE2_SPACE, " ")
    return F.when(folded != "", folded)


def title_case(value: Column) -> Column:
    words = F.split(F.lower(value), " ", -1)
    capitalized = F.transform(words, lambda w: F.concat(F.upper(F.substring(w, 1, 1)), F.substring(w, 2, 1 << 30)))
    return F.array_join(capitalized, " ")


def _strptime_regex(fmt: str) -> tuple[str, list[str]]:
    """A strptime format as a full-match Java regex and the field of each group."""
    pattern, fields, i = ["^\\s*"], [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            if fmt[i + 1] not in _FIELDS:
                raise ValueError(f"strptime directive %{fmt[i + 1]} of {fmt!r} is not supported by the Spark engine")
            name, group = _FIELDS[fmt[i + 1]]
            pattern.append(group)
            fields.append(name)
            i += 2
        else:
            pattern.append(re.escape(fmt[i]))
            i += 1
    return "".join(pattern) + "$", fields


def _strptime(value: Column, fmt: str) -> Column:
    """TIMESTAMP_NTZ of `value` read with one strptime format; NULL when it does not read."""
    regex, fields = _strptime_regex(fmt)
    parts = {name: F.regexp_extract(value, regex, i + 1).try_cast("int") for i, name in enumerate(fields)}
    zero = F.lit(0)
    hours, minutes, seconds = (parts.get(name, zero) for name in ("H", "M", "S"))
    built = F.try_make_timestamp_ntz(parts["y"], parts["m"], parts["d"], hours, minutes, seconds.cast("decimal(16,6)"))
    return F.when(value.rlike(regex), built)


def try_strptime(value: Column, formats: tuple[str, ...]) -> Column:
    return F.coalesce(*[_strptime(value, f) for f in formats])


def to_double(text: Column) -> Column:
    """DuckDB's TRY_CAST(text AS DOUBLE)."""
    digits = F.regexp_replace(text, "(?<=\\d)_(?=\\d)", "")
    return F.when(~text.rlike("[dDfF]\\s*$"), digits.try_cast("double"))


def typed_column(column: ColumnSpec, catalog: Catalog) -> Column:
    """The Column that turns the raw text of `column` into its canonical type (NULL when it does not read)."""
    v = clean(F.col(column.name))
    match column.type:
        case "id":
            return F.regexp_replace(v, "^(\\d+)\\.0+$", "$1")
        case "text":
            return v
        case "name":
            return title_case(v)
        case "lower":
            return F.lower(v)
        case "upper":
            return F.upper(v)
        case "int":
            number = to_double(v)
            return F.when(number == F.round(number, 0), number.try_cast("bigint"))
        case "double":
            number = to_double(F.regexp_replace(v, "%+$", ""))
            return F.when(~F.isnan(number) & (F.abs(number) != float("inf")), number)
        case "date":
            parsed = try_strptime(v, catalog.date_formats)
            fallback = try_strptime(v, catalog.timestamp_formats)
            return F.coalesce(parsed, fallback).cast("date")
        case "timestamp":
            parsed = try_strptime(v, catalog.timestamp_formats)
            return F.coalesce(parsed, try_strptime(v, catalog.date_formats)).cast("timestamp_ntz")
    raise ValueError(f"unknown column type {column.type!r}")


def _reason_list(columns: list[ColumnSpec]) -> Column:
    """Reasons of the values that are present but do not read (over the `_typed_<column>` projection)."""
    if not columns:
        return F.array().cast("array<string>")
    items = [
        F.when(clean(F.col(c.name)).isNotNull() & F.col(f"_typed_{c.name}").isNull(), F.lit(_invalid_reason(c)))
        for c in columns
    ]
    return F.filter(F.array(*items), lambda x: x.isNotNull())


def standardized_frame(spec: DatasetSpec, catalog: Catalog, staged: DataFrame) -> DataFrame:
    """The standardized rows of the staged raw rows (columns and order of `standardize_sql`)."""
    columns = list(spec.columns.values())
    quarantining = [c for c in columns if c.on_invalid == "quarantine" and c.type not in ("text", "id")]
    nullifying = [c for c in columns if c.on_invalid == "nullify" and c.type not in ("text", "id")]
    raw_columns = [*spec.columns, "_raw_line"]
    window = Window.partitionBy(*raw_columns).orderBy(F.col("_source_file").desc(), F.col("_source_row").desc())
    # typed values are computed once; the reasons read them back (Spark does not re-inline costly expressions)
    typed = staged.select(
        *[F.col(c) for c in (*spec.columns, "_source_file", "_source_row", "_raw_line", "_load_errors")],
        *[typed_column(c, catalog).alias(f"_typed_{c.name}") for c in columns],
    )
    result = typed.select(
        *[F.col(f"_typed_{c.name}").alias(c.name) for c in columns],
        F.col("_source_file").cast("string"),
        F.col("_source_row").cast("bigint"),
        F.col("_raw_line").cast("string"),
        F.coalesce(F.col("_load_errors"), F.array().cast("array<string>")).alias("_load_errors"),
        _reason_list(quarantining).alias("_type_errors"),
        _reason_list(nullifying).alias("_flags"),
        (F.row_number().over(window) > 1).alias("_exact_duplicate"),
    )
    if spec.derived:
        result = result.select("*", *[F.expr(expr).alias(name) for name, expr in spec.derived.items()])
    return result


def standardize(
    spark: SparkSession, spec: DatasetSpec, catalog: Catalog, staged_raw: str | list[str], out_path: str
) -> int:
    """Standardize the staged raw Parquet file(s) into `out_path`; returns the rows written."""
    staged = read_parquet(spark, staged_raw)
    return write_parquet(standardized_frame(spec, catalog, staged), out_path)
