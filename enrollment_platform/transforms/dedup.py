"""Duplicate removal (DuckDB backend), DESIGN.md row semantics rule 1.

Exact duplicates (marked by the standardize step) go first; then rows sharing a primary key keep one: the
newest by the last-modified column, ties and missing values broken by the last file and row. Earlier batches
take part through the curated state's keys, so a batch row older than what is curated is a duplicate, and a
batch row identical in lineage to a curated one (a rerun after a crash) is the same row and wins.
"""

from enrollment_platform.config import DatasetSpec
from enrollment_platform.transforms.sql import quote_ident


def ranked_sql(spec: DatasetSpec, last_modified: str, source: str, state: str | None = None) -> str:
    """The batch rows with `_duplicate_reason` (NULL for the row that is kept)."""
    key = quote_ident(spec.primary_key)
    has_modified = last_modified in spec.columns
    modified = quote_ident(last_modified) if has_modified else "NULL::TIMESTAMP"
    keyed = f"{key} IS NOT NULL AND NOT _exact_duplicate AND len(_load_errors) = 0"
    candidates = (
        f"SELECT _batch_row, {key} AS k, {modified} AS modified, _source_file AS file, _source_row AS line, "
        f"1 AS in_batch FROM batch WHERE {keyed}"
    )
    if state is not None:
        state_modified = quote_ident(last_modified) if has_modified else "NULL::TIMESTAMP"
        candidates += (
            f" UNION ALL SELECT NULL, {key}, CAST({state_modified} AS TIMESTAMP), _source_file, _source_row, 0 "
            f"FROM {state}"
        )
    window = "PARTITION BY k ORDER BY modified DESC NULLS LAST, file DESC, line DESC, in_batch DESC"
    return f"""
        WITH batch AS (SELECT *, row_number() OVER () AS _batch_row FROM {source}),
        candidates AS ({candidates}),
        ranked AS (
            SELECT _batch_row, row_number() OVER w AS rank,
                first_value(file) OVER w AS winner_file, first_value(line) OVER w AS winner_row
            FROM candidates WINDOW w AS ({window})
        )
        SELECT batch.* EXCLUDE (_batch_row),
            CASE
                WHEN _exact_duplicate THEN 'exact duplicate row'
                WHEN ranked.rank > 1 THEN
                    'superseded: same {spec.primary_key} as ' || winner_file || ' row ' || winner_row
            END AS _duplicate_reason
        FROM batch LEFT JOIN ranked ON ranked._batch_row = batch._batch_row
        ORDER BY _source_file, _source_row
    """
