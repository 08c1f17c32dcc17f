"""Curated layer: the published Parquet/Snappy state of each dataset, merged batch by batch, and the
reconciliation `rows_in = rows_out + rows_quarantined + rows_duplicate` that proves no row of the batch was
dropped silently.

The merge keeps every curated row whose key the batch did not bring a newer version of, and adds the batch's
kept rows. A newer version that failed validation removes the older one: the newest version is the truth, and
it is in quarantine. The file is replaced atomically, so a reader sees the state before or after, never between.
"""

import uuid
from dataclasses import asdict, dataclass

import dagster as dg
import pyarrow.parquet as pq

from enrollment_platform.assets.common import (
    DATASETS,
    batch_of,
    count_rows,
    key,
    layer_asset,
    metadata_values,
    read_parquet,
    staged,
    staged_parts,
    step_arguments,
    write_query,
)
from enrollment_platform.assets.deduped import (
    curated_parts,
    curated_state_path,
    curated_state_uri,
    kept_candidates_source,
)
from enrollment_platform.assets.raw import launches_job, staged_raw_files, staged_raw_uris
from enrollment_platform.assets.redacted import restricted_path, restricted_tables
from enrollment_platform.assets.validated import quarantine_parts
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import JobRunner
from enrollment_platform.resources.lake import LocalLake, link_or_copy
from enrollment_platform.resources.warehouse.base import BatchChanges
from enrollment_platform.resources.warehouse.model import STATE_VERSION


@dataclass(frozen=True)
class Reconciliation:
    rows_in: int
    rows_out: int
    rows_quarantined: int
    rows_duplicate: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_quarantined + self.rows_duplicate

    def to_dict(self) -> dict:
        return {**asdict(self), "balanced": self.balanced}


RECONCILED = ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate")
STATE_ROWS = "state_rows"  # metadata: the rows of the curated state once the batch is merged


def reconcile(lake: LocalLake, engine: DuckDBEngine, dataset: str, batch: str) -> Reconciliation:
    """Count every row of the batch where it ended up, from the files themselves."""
    con = engine.connect()
    try:
        return Reconciliation(
            rows_in=count_rows(con, staged_raw_files(lake, dataset, batch)),
            rows_out=count_rows(con, staged(lake, "redacted", dataset, batch)),
            rows_quarantined=count_rows(con, lake.path(*quarantine_parts(lake, dataset, batch))),
            rows_duplicate=count_rows(con, staged(lake, "deduped", dataset, batch)),  # the rows set aside
        )
    finally:
        con.close()


def merge_sql(state: str | None, batch_rows: str, winners: str, key_column: str) -> str:
    """The new state: old rows whose key has no newer version in the batch, plus the batch's kept rows."""
    if state is None:
        return f"SELECT * FROM {batch_rows}"
    kept_state = f'SELECT * FROM {state} WHERE "{key_column}" NOT IN (SELECT k FROM {winners})'
    return f"{kept_state} UNION ALL BY NAME SELECT * FROM {batch_rows}"


def _winners(lake: LocalLake, dataset: str, batch: str) -> str:
    """Keys the batch brought a newest version of (kept or quarantined)."""
    primary_key = load_catalog().datasets[dataset].primary_key
    kept = kept_candidates_source(lake, dataset, batch)
    return f'(SELECT "{primary_key}" AS k FROM {kept} WHERE "{primary_key}" IS NOT NULL)'


def state_version(path: str) -> str:
    """The id of a state file's contents ('' for a file written without one, e.g. by a launched step)."""
    return _footer(path).get(STATE_VERSION, "")


def changes_parts(state: str, batch: str) -> list[str]:
    """The rows a batch put into a state (with the state's columns); footer: the versions before and after."""
    return ["staging", "state_changes", state, f"{batch}.parquet"]


def removed_parts(state: str, batch: str) -> list[str]:
    """The keys a batch removed from a state (their newest version was quarantined)."""
    return ["staging", "state_removed", state, f"{batch}.parquet"]


def _footer(path: str) -> dict[str, str]:
    metadata = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in metadata.items() if not k.startswith(b"ARROW")}


def batch_changes(lake: LocalLake, state: str, state_parts: list[str], batch: str) -> BatchChanges | None:
    """The batch's changes to a curated state, when the curated step wrote them and the state file is still the
    version they lead to (None otherwise: the load takes the whole state)."""
    rows, removed = changes_parts(state, batch), removed_parts(state, batch)
    if not (lake.exists(*rows) and lake.exists(*removed) and lake.exists(*state_parts)):
        return None
    footer = _footer(lake.path(*rows))
    version = footer.get(STATE_VERSION, "")
    if not version or state_version(lake.path(*state_parts)) != version:
        return None
    state_rows = int(footer.get("state_rows", -1))
    return BatchChanges(lake.path(*rows), lake.path(*removed), footer.get("base_version", ""), version, state_rows)


def merge_into_state(
    engine, lake, target: list[str], batch_file: str, winners: str, key_column: str, state: str, batch: str
) -> tuple[int, int]:
    """Merge a batch into a state file atomically; return (rows in the new state, old rows replaced).

    Beside it, the batch's changes (`changes_parts`, `removed_parts`), so a warehouse in step with the previous
    version loads only those. A batch with no rows, or one the state took already (`_merged_before`), leaves the
    state file as it was.
    """
    state_file = lake.path(*target)
    exists = lake.exists(*target)
    merged = exists and _merged_before(engine, lake, state_file, batch_file, winners, key_column, (state, batch))
    if merged:
        return merged
    con = engine.connect()
    try:
        before = count_rows(con, state_file) if exists else 0
        added = count_rows(con, batch_file)
        touched = con.execute(f"SELECT count(*) FROM {winners}").fetchone()[0]
    finally:
        con.close()
    base = state_version(state_file) if exists else ""
    if exists and not added and not touched:
        rows, version = before, base
    elif not exists and state_version(batch_file):
        # a first batch is the state as it is: linked or copied, not rewritten
        with lake.atomic_write(*target) as temporary:
            link_or_copy(batch_file, temporary)
        rows, version = added, state_version(batch_file)
    else:
        version = uuid.uuid4().hex
        query = merge_sql(read_parquet(state_file) if exists else None, read_parquet(batch_file), winners, key_column)
        # no sort: the kept old rows keep their order and the batch follows (a sort of the state cost half the merge)
        rows = write_query(engine, lake, query, *target, kv={STATE_VERSION: version})
    replaced = before + added - rows
    if exists:  # the first batch has no earlier version for a warehouse to be in step with: no changes to write
        versions = (base, version, rows, replaced)
        _write_changes(engine, lake, state_file, batch_file, winners, key_column, (state, batch), versions)
    return rows, replaced


def _merged_before(engine, lake, state_file, batch_file, winners, key_column, where) -> tuple[int, int] | None:
    """(rows, replaced) of the merge that made the state, when it took exactly this batch's rows and removed keys
    (a re-run of a batch whose run stopped after the merge); None otherwise. Merging them again would give the same
    rows under a new version, and the warehouse tables that took the batch would no longer be in step with it.
    Compares the batch with what the state took from it: work in proportion to the batch."""
    state, batch = where
    rows_at, removed_at = changes_parts(state, batch), removed_parts(state, batch)
    if not (lake.exists(*rows_at) and lake.exists(*removed_at)):
        return None
    footer = _footer(lake.path(*rows_at))
    if footer.get(STATE_VERSION) != state_version(state_file) or "rows_replaced" not in footer:
        return None
    columns = ", ".join(f'"{c}"' for c in pq.read_schema(batch_file).names)
    removed_now = f"({_removed_sql(batch_file, winners, key_column)})"
    compared = [  # (what the merge took, what this run gives, the columns compared)
        (read_parquet(lake.path(*rows_at)), read_parquet(batch_file), columns),
        (read_parquet(lake.path(*removed_at)), removed_now, f'"{key_column}"'),
    ]
    differ = " OR ".join(
        f"EXISTS (SELECT {c} FROM {a} EXCEPT ALL SELECT {c} FROM {b}) OR EXISTS (SELECT {c} FROM {b} EXCEPT ALL "
        f"SELECT {c} FROM {a})"
        for a, b, c in compared
    )
    con = engine.connect()
    try:
        differs = con.execute(f"SELECT {differ}").fetchone()[0]
    finally:
        con.close()
    return None if differs else (int(footer["state_rows"]), int(footer["rows_replaced"]))


def _removed_sql(batch_file: str, winners: str, key_column: str) -> str:
    """The keys the batch removes: those it brought a newest version of that is not among its kept rows."""
    batch_keys = f'SELECT "{key_column}" FROM {read_parquet(batch_file)}'
    return f'SELECT k AS "{key_column}" FROM {winners} WHERE k NOT IN ({batch_keys})'


def _write_changes(engine, lake, state_file, batch_file, winners, key_column, where, versions) -> None:
    """The batch's rows with the new state's columns, and the keys it removed; footers: versions, row count and
    the rows it replaced."""
    state, batch = where
    base, version, rows, replaced = versions
    footer = {"base_version": base, STATE_VERSION: version, "state_rows": str(rows), "rows_replaced": str(replaced)}
    columns = f"(SELECT * FROM {read_parquet(state_file)} LIMIT 0) UNION ALL BY NAME "
    write_query(
        engine, lake, f"{columns}SELECT * FROM {read_parquet(batch_file)}", *changes_parts(state, batch), kv=footer
    )
    removed = _removed_sql(batch_file, winners, key_column)
    write_query(engine, lake, removed, *removed_parts(state, batch), kv=footer)


def _curate_in_process(lake, engine, dataset: str, batch: str) -> dict:
    """The DuckDB body: merge the batch into the curated and restricted states; count where every row went."""
    primary_key = load_catalog().datasets[dataset].primary_key
    winners = _winners(lake, dataset, batch)
    batch_file = staged(lake, "redacted", dataset, batch)
    state_rows, replaced = merge_into_state(
        engine, lake, curated_parts(dataset), batch_file, winners, primary_key, dataset, batch
    )
    for table, restricted in restricted_tables(dataset).items():
        batch_file = staged(lake, "restricted", table, batch)
        merge_into_state(engine, lake, restricted_path(table), batch_file, winners, restricted["key"], table, batch)
    counts = reconcile(lake, engine, dataset, batch)
    return {**counts.to_dict(), "reconciled": counts.balanced, "rows_replaced": replaced, "state_rows": state_rows}


def _launch_curate(context, lake, job_runner: JobRunner, dataset: str, batch: str) -> dict:
    """The launched curate step, given every object the DuckDB body reads and writes."""
    restricted = {
        table: "|".join(
            [
                lake.uri(*staged_parts("restricted", table, batch)),
                lake.uri(*restricted_path(table)),
                lake.uri(*restricted_path(table)) if lake.exists(*restricted_path(table)) else "",
            ]
        )
        for table in restricted_tables(dataset)
    }
    paths = {
        "input": lake.uri(*staged_parts("redacted", dataset, batch)),
        "output": lake.uri(*curated_parts(dataset)),
        "state": curated_state_uri(lake, dataset),
        "deduped": lake.uri(*staged_parts("deduped", dataset, batch)),
        "standardized": lake.uri(*staged_parts("standardized", dataset, batch)),
        "staged_raw": staged_raw_uris(lake, dataset, batch),
        "quarantine_output": lake.uri(*quarantine_parts(lake, dataset, batch)),
        "restricted": ",".join(f"{table}={value}" for table, value in restricted.items()) or None,
    }
    launched = job_runner.run(context, "curate", step_arguments(context, lake, "curate", dataset, batch, **paths))
    return metadata_values(launched.metadata)


def build_curated_asset(dataset: str) -> dg.AssetsDefinition:
    @layer_asset(
        "curated",
        dataset,
        f"{dataset}: the curated Parquet (Snappy) state, merged batch by batch, written atomically, no raw PII.",
        deps=[key("redacted", dataset)],
        check_specs=[
            dg.AssetCheckSpec(
                "reconciliation",
                asset=key("curated", dataset),
                blocking=True,
                description="rows_in = rows_out + rows_quarantined + rows_duplicate for the run's batch, "
                "counted from the files by the engine that merged them.",
            )
        ],
    )
    def curated_asset(
        context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine, job_runner: JobRunner
    ) -> dg.MaterializeResult:
        batch = batch_of(context)
        if launches_job(job_runner, lake, dataset, batch):
            values = _launch_curate(context, lake, job_runner, dataset, batch)
        else:
            values = _curate_in_process(lake, engine, dataset, batch)
        counts = Reconciliation(*(int(values[name]) for name in RECONCILED))
        metadata = {name: dg.MetadataValue.int(getattr(counts, name)) for name in RECONCILED}
        metadata |= {
            "batch": batch,
            "engine": str(values.get("engine", "duckdb")),  # a launched step reports its own
            "reconciled": dg.MetadataValue.bool(counts.balanced),
            "rows_replaced": dg.MetadataValue.int(int(values["rows_replaced"])),
            STATE_ROWS: dg.MetadataValue.int(int(values[STATE_ROWS])),
            "path": dg.MetadataValue.path(curated_state_path(lake, dataset)),
        }
        if not counts.balanced:
            raise dg.Failure(
                f"{dataset}: rows_in {counts.rows_in} != rows_out {counts.rows_out} + rows_quarantined "
                f"{counts.rows_quarantined} + rows_duplicate {counts.rows_duplicate}: rows were lost",
                metadata=metadata,
                allow_retries=False,
            )
        check = dg.AssetCheckResult(check_name="reconciliation", passed=True, metadata=counts.to_dict())
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return curated_asset


curated_assets = [build_curated_asset(dataset) for dataset in DATASETS]
