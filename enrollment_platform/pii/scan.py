"""Running the detector over tables: which columns are text, and per-entity counts of the cells that hold PII.

The SQL engine does the cheap part: it keeps only the cells that match the detector's RE2 prefilter, settles the
cells whose detections are proven (pii.shortcuts) and groups the others by value, so Python sees each remaining
distinct candidate value once, with its number of cells. All columns of a relation go in one query. Works with
any `fetch(sql) -> rows` (a DuckDB connection, the warehouse resource's read-only `query`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from enrollment_platform.pii.detectors import Detector
from enrollment_platform.pii.shortcuts import shortcuts_for
from enrollment_platform.transforms.sql import quote_ident, quote_literal

Fetch = Callable[[str], list[tuple]]
TEXT_TYPES = ("VARCHAR", "TEXT", "CHARACTER VARYING", "STRING")


def is_text(data_type: str) -> bool:
    """VARCHAR-like columns and lists of them (e.g. DQ flags)."""
    base = data_type.upper().removesuffix("[]")
    return base in TEXT_TYPES or base.startswith("VARCHAR(")


def text_expression(column: str, data_type: str) -> str:
    """SQL giving the column's text: a list of strings is joined with newlines; other types are cast."""
    quoted = quote_ident(column)
    if data_type.upper().endswith("[]"):
        return f"array_to_string({quoted}, chr(10))"
    return quoted if is_text(data_type) else f"CAST({quoted} AS VARCHAR)"


PROBE_ROWS = 20_000  # rows read to judge a column's number of distinct values
GROUP_FIRST_SHARE = 0.5  # below this share of distinct values among them, group the cells before the prefilter


def candidates_sql(
    relation: str, expression: str, prefilter: str, known: str | None = None, group_first: bool = False
) -> str:
    """Rows (known, value, cells) over the cells matching the prefilter. `known` is SQL over `value` giving
    what the cell holds when that is known without Python ('' for nothing, else the entity; see pii.shortcuts):
    such cells are summed up per entity and their value left NULL. Other cells come grouped by value with
    known NULL. With `group_first` the column is grouped before the prefilter runs (once per distinct value:
    cheaper for columns with few distinct values), else the prefilter runs on every cell."""
    matches = f"regexp_matches(value, {quote_literal(prefilter)})"
    if group_first:
        cells = f"SELECT value, cells FROM (SELECT {expression} AS value, count(*) AS cells FROM {relation} GROUP BY 1)"
    else:
        cells = f"SELECT value, 1 AS cells FROM (SELECT {expression} AS value FROM {relation})"
    if known is None:
        no_known = "CAST(NULL AS VARCHAR) AS known"
        return f"SELECT {no_known}, value, sum(cells) AS cells FROM ({cells}) WHERE {matches} GROUP BY 2"
    return (
        "SELECT known, CASE WHEN known IS NULL THEN value END AS value, sum(cells) AS cells "
        f"FROM (SELECT {known} AS known, value, cells FROM ({cells}) WHERE {matches}) GROUP BY 1, 2"
    )


def group_first(fetch: Fetch, relation: str, expressions: list[str]) -> list[bool]:
    """Per expression, whether its first PROBE_ROWS cells hold few distinct values (speed only, never results)."""
    columns = ", ".join(f"{e} AS c{i}" for i, e in enumerate(expressions))
    distinct = ", ".join(f"count(DISTINCT c{i})" for i in range(len(expressions)))
    row = fetch(f"SELECT count(*), {distinct} FROM (SELECT {columns} FROM {relation} LIMIT {PROBE_ROWS})")[0]
    return [n < GROUP_FIRST_SHARE * row[0] for n in row[1:]]


def count_expressions(fetch: Fetch, relation: str, expressions: list[str], detector: Detector) -> list[Counter[str]]:
    """Per expression, per entity, how many cells contain it at least once: one query for all expressions;
    Python runs the detector once per distinct candidate value that the short-cuts do not settle."""
    if not expressions:
        return []
    shortcuts = shortcuts_for(detector)
    known = shortcuts.known_sql("value") if shortcuts else None
    grouped = group_first(fetch, relation, expressions)
    sql = " UNION ALL ".join(
        f"SELECT {i} AS expression, known, value, cells "
        f"FROM ({candidates_sql(relation, expression, detector.prefilter, known, grouped[i])})"
        for i, expression in enumerate(expressions)
    )
    counts: list[Counter[str]] = [Counter() for _ in expressions]
    found: dict[str, set[str]] = {}
    for i, entity, value, cells in fetch(sql):
        if entity is None:
            if value not in found:
                found[value] = detector.entities_in(value)
            entities: Iterable[str] = found[value]
        else:
            entities = (entity,) if entity else ()
        for name in entities:
            counts[i][name] += int(cells)
    return counts


def count_entities(fetch: Fetch, relation: str, expression: str, detector: Detector) -> Counter[str]:
    """Per entity, how many cells of the expression's column contain it at least once."""
    return count_expressions(fetch, relation, [expression], detector)[0]


def scan_columns(
    fetch: Fetch, relation: str, columns: Iterable[tuple[str, str]], detector: Detector
) -> dict[str, Counter[str]]:
    """Entity counts for each (column, type), only for columns where something was found."""
    columns = list(columns)
    expressions = [text_expression(column, data_type) for column, data_type in columns]
    counts = count_expressions(fetch, relation, expressions, detector)
    return {column: found for (column, _), found in zip(columns, counts, strict=True) if found}


def sample_values(fetch: Fetch, relation: str, expression: str, rows: int) -> list[str]:
    """Up to `rows` non-empty values, a repeatable reservoir sample (DuckDB syntax)."""
    sql = (
        f"SELECT value FROM (SELECT {expression} AS value FROM {relation} WHERE {expression} <> '') "
        f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE (7)"
    )
    return [row[0] for row in fetch(sql)]
