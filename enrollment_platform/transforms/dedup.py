"""Duplicate removal (DuckDB backend), DESIGN.md row semantics rule 1.

Exact duplicates (marked by the standardize step) go first; then rows sharing a primary key keep one: the
newest by the last-modified column, ties and missing values broken by the last file and row. Earlier batches
take part through the curated state's keys, so a batch row older than what is curated is a duplicate, and a
batch row identical in lineage to a curated one (a rerun after a crash) is the same row and wins.

The deduped zone holds the rows set aside, each with its reason (`set_aside_sql`); the rows kept are the
standardized rows not among them (`kept_candidates_sql`). A copy of every kept row cost a 10 M-row write per
batch and told nothing the standardized zone does not.
"""

from enrollment_platform.config import DatasetSpec
from enrollment_platform.transforms.sql import quote_ident


def ranked_sql(spec: DatasetSpec, last_modified: str, source: str, state: str | None = None) -> str:
    """The batch rows with `_duplicate_reason` (NULL for the row that is kept).

    Only keys with more than one candidate can lose a row, and they are few: those keys are found first (a
    count per key), and the winner of each comes from one hash aggregate over fixed-width values (files are
    numbered in name order, so the greatest ranking struct still names the winning file and row). A batch row
    is superseded when its key's winner is another row. No output sort: callers that need an order ask for it.
    """
    key = quote_ident(spec.primary_key)
    has_modified = last_modified in spec.columns
    modified = f"CAST({quote_ident(last_modified)} AS TIMESTAMP)" if has_modified else "NULL::TIMESTAMP"
    keyed = f"{key} IS NOT NULL AND NOT _exact_duplicate AND len(_load_errors) = 0"
    candidates = (
        f"SELECT {key} AS k, {modified} AS modified, _source_file AS file, _source_row AS line, 1 AS in_batch "
        f"FROM {source} WHERE {keyed}"
    )
    if state is not None:  # only the state's rows of keys the batch brings can compete with a batch row
        batch_keys = f"SELECT {key} FROM {source} WHERE {keyed}"
        state_rows = f"SELECT {key}, {modified}, _source_file, _source_row, 0 FROM {state}"
        candidates += f" UNION ALL {state_rows} WHERE {key} IN ({batch_keys})"
    # DESC NULLS LAST on modified, then file, line, batch over state: the greatest ranking struct wins.
    rank = (
        "struct_pack(n := modified IS NOT NULL, m := coalesce(modified, '-infinity'::TIMESTAMP), "
        "f := files.f, l := line, b := in_batch)"
    )
    return f"""
        WITH candidates AS ({candidates}),
        contested AS (SELECT k FROM candidates GROUP BY k HAVING count(*) > 1),
        files AS (
            SELECT file, row_number() OVER (ORDER BY file)::INTEGER AS f FROM (SELECT DISTINCT file FROM candidates)
        ),
        winners AS (
            SELECT k, max({rank}) AS w FROM candidates JOIN files USING (file)
            WHERE k IN (SELECT k FROM contested) GROUP BY k
        ),
        named AS (SELECT k, files.file, w.l AS line, w.b AS in_batch FROM winners JOIN files ON files.f = w.f)
        SELECT batch.*,
            CASE
                WHEN _exact_duplicate THEN 'exact duplicate row'
                WHEN NOT ({keyed}) OR w.k IS NULL THEN NULL
                WHEN w.file = batch._source_file AND w.line = batch._source_row AND w.in_batch = 1 THEN NULL
                ELSE 'superseded: same {spec.primary_key} as ' || w.file || ' row ' || w.line
            END AS _duplicate_reason
        FROM {source} batch LEFT JOIN named w ON w.k = batch.{key}
    """


def set_aside_sql(spec: DatasetSpec, last_modified: str, source: str, state: str | None = None) -> str:
    """The batch rows set aside (exact duplicates, superseded versions) with their `_duplicate_reason`."""
    return f"SELECT * FROM ({ranked_sql(spec, last_modified, source, state)}) WHERE _duplicate_reason IS NOT NULL"


def kept_candidates_sql(standardized: str, set_aside: str) -> str:
    """The standardized rows dedup kept: those not set aside. A row is its lineage: file, row number, and whether
    it is a line the reader rejected (numbered by file line, so its number can be a parsed row's too)."""
    same_row = (
        "d._source_file = s._source_file AND d._source_row = s._source_row "
        "AND (d._raw_line IS NULL) = (s._raw_line IS NULL)"
    )
    return f"(SELECT s.* FROM {standardized} s ANTI JOIN {set_aside} d ON {same_row})"
