"""Duplicate removal (DuckDB backend), DESIGN.md row semantics rule 1.

Exact duplicates (marked by the standardize step) go first; then rows sharing a primary key keep one: the
newest by the last-modified column, ties and missing values broken by the last file and row. Every removed
row is kept in the duplicates output with the lineage of the row that superseded it.
"""

from __future__ import annotations

from enrollment_platform.config import DatasetSpec
from enrollment_platform.transforms.sql import quote_ident


def ranked_sql(spec: DatasetSpec, last_modified: str, source: str) -> str:
    """The standardized rows with `_duplicate_reason` (NULL for the row that is kept)."""
    key = quote_ident(spec.primary_key)
    order = "_source_file DESC, _source_row DESC"
    if last_modified in spec.columns:
        order = f"{quote_ident(last_modified)} DESC NULLS LAST, {order}"
    keyed = f"{key} IS NOT NULL AND NOT _exact_duplicate AND len(_load_errors) = 0"
    window = f"PARTITION BY CASE WHEN {keyed} THEN {key} END ORDER BY {order}"
    return f"""
        SELECT *,
            CASE
                WHEN _exact_duplicate THEN 'exact duplicate row'
                WHEN {keyed} AND row_number() OVER ({window}) > 1 THEN
                    'superseded: same {spec.primary_key} as ' || first_value(_source_file) OVER ({window})
                    || ' row ' || first_value(_source_row) OVER ({window})
            END AS _duplicate_reason
        FROM {source}
    """
