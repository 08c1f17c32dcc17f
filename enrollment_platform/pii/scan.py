"""Running the detector over tables: which columns are text, and per-entity counts of the cells that hold PII.

The SQL engine does the cheap part: it keeps only the cells that match the detector's RE2 prefilter and groups
them by value, so Python sees each distinct candidate value once, with its number of cells. Works with any
`fetch(sql) -> rows` (a DuckDB connection, the warehouse resource's read-only `query`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from enrollment_platform.pii.detectors import Detector
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


def candidates_sql(relation: str, expression: str, prefilter: str) -> str:
    return (
        f"SELECT {expression} AS value, count(*) AS cells FROM {relation} "
        f"WHERE regexp_matches({expression}, {quote_literal(prefilter)}) GROUP BY 1"
    )


def count_entities(fetch: Fetch, relation: str, expression: str, detector: Detector) -> Counter[str]:
    """Per entity, how many cells of the expression's column contain it at least once."""
    counts: Counter[str] = Counter()
    for value, cells in fetch(candidates_sql(relation, expression, detector.prefilter)):
        for entity in detector.entities_in(value):
            counts[entity] += cells
    return counts


def scan_columns(
    fetch: Fetch, relation: str, columns: Iterable[tuple[str, str]], detector: Detector
) -> dict[str, Counter[str]]:
    """Entity counts for each (column, type), only for columns where something was found."""
    found = {}
    for column, data_type in columns:
        counts = count_entities(fetch, relation, text_expression(column, data_type), detector)
        if counts:
            found[column] = counts
    return found


def sample_values(fetch: Fetch, relation: str, expression: str, rows: int) -> list[str]:
    """Up to `rows` non-empty values, a repeatable reservoir sample (DuckDB syntax)."""
    sql = (
        f"SELECT value FROM (SELECT {expression} AS value FROM {relation} WHERE {expression} <> '') "
        f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE (7)"
    )
    return [row[0] for row in fetch(sql)]
