"""Duplicate removal (DuckDB backend), DESIGN.md row semantics rule 1.

Exact duplicates (marked by the standardize step) go first; then rows sharing a primary key keep one: the
newest by the last-modified column, ties and missing values broken by the last file and row. Earlier batches
take part through the curated state's keys, so a batch row older than what is curated is a duplicate, and a
batch row identical in lineage to a curated one (a rerun after a crash) is the same row and wins.
"""

from enrollment_platform.config import DatasetSpec
from enrollment_platform.transforms.sql import quote_ident


def ranked_sql(spec: DatasetSpec, last_modified: str, source: str, state: str | None = None) -> str:
    """The batch rows with `_duplicate_reason` (NULL for the row that is kept).

    The winner of each key comes from one hash aggregate (arg_max over the ranking key), not a window over every
    candidate: a batch row is superseded when its key's winner is another row. No output sort: callers that need
    an order ask for it.
    """
    key = quote_ident(spec.primary_key)
    has_modified = last_modified in spec.columns
    modified = f"CAST({quote_ident(last_modified)} AS TIMESTAMP)" if has_modified else "NULL::TIMESTAMP"
    keyed = f"{key} IS NOT NULL AND NOT _exact_duplicate AND len(_load_errors) = 0"
    candidates = (
        f"SELECT {key} AS k, {modified} AS modified, _source_file AS file, _source_row AS line, 1 AS in_batch "
        f"FROM {source} WHERE {keyed}"
    )
    if state is not None:
        candidates += f" UNION ALL SELECT {key}, {modified}, _source_file, _source_row, 0 FROM {state}"
    # DESC NULLS LAST on modified, then file, line, batch over state: the greatest ranking struct wins.
    rank = (
        "struct_pack(n := modified IS NOT NULL, m := coalesce(modified, '-infinity'::TIMESTAMP), "
        "f := file, l := line, b := in_batch)"
    )
    return f"""
        WITH winners AS (
            SELECT k, arg_max(struct_pack(file := file, line := line, in_batch := in_batch), {rank}) AS w
            FROM ({candidates}) GROUP BY k
        )
        SELECT batch.*,
            CASE
                WHEN _exact_duplicate THEN 'exact duplicate row'
                WHEN NOT ({keyed}) THEN NULL
                WHEN w.file = batch._source_file AND w.line = batch._source_row AND w.in_batch = 1 THEN NULL
                ELSE 'superseded: same {spec.primary_key} as ' || w.file || ' row ' || w.line
            END AS _duplicate_reason
        FROM {source} batch LEFT JOIN (SELECT k, unnest(w) FROM winners) w ON w.k = batch.{key}
    """
