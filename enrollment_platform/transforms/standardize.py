"""Staged raw text -> typed canonical columns (DuckDB backend).

A value that does not read as its column's type becomes NULL and leaves a reason: in `_type_errors` (the row
will be quarantined) or in `_flags` (the value is nulled and the row kept), as the column's `on_invalid` says.
Exact duplicates are marked here, while the raw strings are still at hand, so "exact" means byte-equal values.
"""

from __future__ import annotations

from enrollment_platform.config import Catalog, ColumnSpec, DatasetSpec
from enrollment_platform.transforms.sql import quote_ident, quote_literal

RAW_LINEAGE = ("_source_file", "_source_row", "_raw_line", "_load_errors")


# What RE2's \s matches besides a single space; text with none of these and no double space folds to itself.
_FOLDED_WHITESPACE = ("'  '", "chr(9)", "chr(10)", "chr(12)", "chr(13)")


# Types whose reading does not depend on inner whitespace: a number with whitespace inside does not read whether
# or not the runs are folded, so their values are only trimmed (the fold's tests cost 0.3 s per 10 M values).
_UNFOLDED_TYPES = ("int", "double")


def _clean(expr: str, fold: bool = True) -> str:
    """Trimmed text with inner whitespace runs folded to one space; empty becomes NULL. The regex runs only on
    values that hold something to fold: most hold none, and the regex on every value cost about a quarter of the
    step at 10 M rows."""
    trimmed = f"trim({expr})"
    if not fold:
        return f"nullif({trimmed}, '')"
    foldable = " OR ".join(f"contains({trimmed}, {w})" for w in _FOLDED_WHITESPACE)
    folded = f"CASE WHEN {foldable} THEN regexp_replace({trimmed}, '\\s+', ' ', 'g') ELSE {trimmed} END"
    return f"nullif({folded}, '')"


def cleaned_text(column: ColumnSpec) -> str:
    """The column's raw text as its type reads it (`_clean`)."""
    return _clean(quote_ident(column.name), fold=column.type not in _UNFOLDED_TYPES)


def _title_case(expr: str) -> str:
    words = f"string_split(lower({expr}), ' ')"
    return f"array_to_string(list_transform({words}, lambda w: upper(w[1]) || w[2:]), ' ')"


def _formats(formats: tuple[str, ...]) -> str:
    return "[" + ", ".join(quote_literal(f) for f in formats) + "]"


def typed_expression(column: ColumnSpec, catalog: Catalog, cleaned: bool = False) -> str:
    """The SQL that turns the raw text of `column` into its canonical type (NULL when it does not read);
    `cleaned`: the column already holds its `_clean` text."""
    v = quote_ident(column.name) if cleaned else cleaned_text(column)
    match column.type:
        case "id":  # "123.0" (a spreadsheet's number) is id 123; the regex runs only on values with a point
            return f"CASE WHEN contains({v}, '.') THEN regexp_replace({v}, '^(\\d+)\\.0+$', '\\1') ELSE {v} END"
        case "text":
            return v
        case "name":
            return _title_case(v)
        case "lower":
            return f"lower({v})"
        case "upper":
            return f"upper({v})"
        case "int":
            number = f"TRY_CAST({v} AS DOUBLE)"
            # TRY_CAST: a whole number beyond BIGINT (e.g. "1e100") does not read, it does not stop the step
            return f"CASE WHEN {number} = floor({number}) THEN TRY_CAST({number} AS BIGINT) END"
        case "double":
            # rtrim only where there is a '%': on every value it cost 0.5 s per 10 M
            number = f"TRY_CAST(CASE WHEN ends_with({v}, '%') THEN rtrim({v}, '%') ELSE {v} END AS DOUBLE)"
            return f"CASE WHEN isfinite({number}) THEN {number} END"
        case "date":
            parsed = f"try_strptime({v}, {_formats(catalog.date_formats)})"
            fallback = f"try_strptime({v}, {_formats(catalog.timestamp_formats)})"
            return f"CAST(coalesce({parsed}, {fallback}) AS DATE)"
        case "timestamp":
            parsed = f"try_strptime({v}, {_formats(catalog.timestamp_formats)})"
            return f"CAST(coalesce({parsed}, try_strptime({v}, {_formats(catalog.date_formats)})) AS TIMESTAMP)"
    raise ValueError(f"unknown column type {column.type!r}")


def _invalid_reason(column: ColumnSpec) -> str:
    return f"{column.name}: value is not a valid {column.type}"


def _reason_list(columns: list[ColumnSpec], catalog: Catalog) -> str:
    """The reasons of the values (cleaned text) that do not read as their column's type."""
    if not columns:
        return "[]::VARCHAR[]"
    items = ", ".join(
        f"CASE WHEN {quote_ident(c.name)} IS NOT NULL AND ({typed_expression(c, catalog, cleaned=True)}) IS NULL "
        f"THEN {quote_literal(_invalid_reason(c))} END"
        for c in columns
    )
    return f"list_filter([{items}], lambda x: x IS NOT NULL)"


def exact_duplicates_sql(raw_columns: str, source: str, candidate_columns: str | None = None) -> str:
    """(_source_file, _source_row, _exact_duplicate) of the rows whose raw values all equal another row's: every
    copy but the last (by file and row) is a duplicate. A window over every row partitioned by every column cost
    more than half of the step; a hash finds the few candidate rows first, and only those are compared value by
    value. `candidate_columns`: some of the columns (e.g. the key and last-modified), hashed instead of all of
    them; rows equal in all are equal in these, so no duplicate is missed, and the hash is cheaper."""
    hashed = f"hash({candidate_columns or raw_columns})"
    repeated = f"SELECT h FROM (SELECT {hashed} AS h FROM {source}) GROUP BY h HAVING count(*) > 1"
    rank = f"row_number() OVER (PARTITION BY {raw_columns} ORDER BY _source_file DESC, _source_row DESC)"
    return (
        f"SELECT _source_file, _source_row, {rank} > 1 AS _exact_duplicate FROM {source} WHERE {hashed} IN ({repeated})"
    )


def standardize_sql(spec: DatasetSpec, catalog: Catalog, source: str) -> str:
    """SELECT over the staged raw rows in `source` producing the standardized rows."""
    columns = list(spec.columns.values())
    typed = [f"{typed_expression(c, catalog, cleaned=True)} AS {quote_ident(c.name)}" for c in columns]
    quarantining = [c for c in columns if c.on_invalid == "quarantine" and c.type not in ("text", "id")]
    nullifying = [c for c in columns if c.on_invalid == "nullify" and c.type not in ("text", "id")]
    raw_columns = ", ".join(quote_ident(c) for c in (*spec.columns, "_raw_line"))
    identifying = [c for c in dict.fromkeys((spec.primary_key, catalog.last_modified_column)) if c in spec.columns]
    candidates = ", ".join(quote_ident(c) for c in (*identifying, "_raw_line"))
    exact = exact_duplicates_sql(raw_columns, source, candidates)
    # Each value is cleaned once (the regex is the costly part), then typed and checked from the cleaned text.
    cleaned = (
        f"SELECT {', '.join(f'{cleaned_text(c)} AS {quote_ident(c.name)}' for c in columns)}, "
        f"_source_file, _source_row, _raw_line, _load_errors, coalesce(d._exact_duplicate, false) AS _exact_duplicate "
        f"FROM {source} LEFT JOIN ({exact}) d USING (_source_file, _source_row)"
    )
    typed_row = (
        f"SELECT {', '.join(typed)}, _source_file, _source_row, _raw_line, "
        f"coalesce(_load_errors, []::VARCHAR[]) AS _load_errors, "
        f"{_reason_list(quarantining, catalog)} AS _type_errors, "
        f"{_reason_list(nullifying, catalog)} AS _flags, "
        f"_exact_duplicate FROM ({cleaned})"
    )
    if not spec.derived:
        return typed_row
    derived = ", ".join(f"{expr} AS {quote_ident(name)}" for name, expr in spec.derived.items())
    return f"SELECT *, {derived} FROM ({typed_row})"
