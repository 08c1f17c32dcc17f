"""Monitoring assets: `monitoring/warehouse_metrics`, an observable asset over the warehouse.

Each observation (the asset's "Observe" button in the UI, or any job selecting it) records table sizes and row
counts, the slowest statements (pg_stat_statements on PostgreSQL, SYS_QUERY_HISTORY on Redshift, DuckDB's profiler
on DuckDB) and the load time of every warehouse table in the last runs, keeps them in the lake under `monitoring/`,
and flags a load or statement slower than its history (a warning in the log and `regressed` in the metadata).
It is in the `warehouse` group beside the tables it watches, and not part of the pipeline job.
"""

import hashlib
import json
from collections.abc import Iterator

import dagster as dg

from enrollment_platform.assets.common import key, markdown_table
from enrollment_platform.assets.warehouse import warehouse_assets
from enrollment_platform.monitoring import history
from enrollment_platform.monitoring.regressions import RegressionPolicy
from enrollment_platform.monitoring.warehouse_metrics import Observation, observe_warehouse
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import Warehouse

WAREHOUSE_METRICS = key("monitoring", "warehouse_metrics")
LOADED = [k for asset in warehouse_assets for k in asset.keys if k.path[0] == "warehouse"]
STATEMENT_CHARS = 120
DEFAULT_POLICY = RegressionPolicy()


class WarehouseMetricsConfig(dg.Config):
    """How a load or statement is judged against its history (the launchpad can change it per observation)."""

    factor: float = DEFAULT_POLICY.factor
    window: int = DEFAULT_POLICY.window
    min_history: int = DEFAULT_POLICY.min_history
    min_increase_ms: float = DEFAULT_POLICY.min_increase_ms

    def policy(self) -> RegressionPolicy:
        return RegressionPolicy(self.factor, self.window, self.min_history, self.min_increase_ms)


def load_steps() -> dict[str, str]:
    """Step key of each warehouse table's asset -> the table."""
    return {k.to_python_identifier(): k.path[-1] for k in LOADED}


def _tables_metadata(observation: Observation) -> dict:
    rows = [
        {"table": t.table, "rows": t.rows, "size_bytes": "" if t.size_bytes is None else t.size_bytes}
        for t in observation.tables
    ]
    metadata = {
        "tables": dg.MetadataValue.md(markdown_table(rows, limit=50)),
        "total_rows": dg.MetadataValue.int(sum(t.rows for t in observation.tables)),
        "total_bytes": dg.MetadataValue.int(sum(t.size_bytes or 0 for t in observation.tables)),
    }
    metadata.update({f"rows.{t.table}": dg.MetadataValue.int(t.rows) for t in observation.tables})
    return metadata


def _queries_metadata(observation: Observation) -> dict:
    log = observation.queries
    rows = [
        {
            "query_id": q.query_id,
            "calls": q.calls,
            "mean_ms": round(q.mean_ms, 3),
            "recent_ms": "" if q.query_id not in observation.recent_ms else round(observation.recent_ms[q.query_id], 3),
            "statement": " ".join(q.query.split())[:STATEMENT_CHARS],
        }
        for q in log.queries
    ]
    return {
        "query_source": dg.MetadataValue.text(log.source),
        "query_source_available": dg.MetadataValue.bool(log.available),
        "query_source_note": dg.MetadataValue.text(log.note),
        "slow_queries": dg.MetadataValue.md(markdown_table(rows) if log.available else f"_{log.note}_"),
    }


def _loads_metadata(observation: Observation) -> dict:
    rows = [
        {
            "table": t.table,
            "run_id": t.run_id[:8],
            "duration_ms": round(t.duration_ms, 1),
            "median_ms": round(observation.load_medians[t.table], 1) if t.table in observation.load_medians else "",
        }
        for t in observation.loads
    ]
    latest = observation.loads[0].run_id if observation.loads else ""
    return {"latest_run": dg.MetadataValue.text(latest), "loads": dg.MetadataValue.md(markdown_table(rows))}


def observation_metadata(observation: Observation, lake: LocalLake) -> dict:
    """The observation as asset metadata: tables, statements, loads, and the regression flag."""
    return {
        "warehouse": dg.MetadataValue.text(observation.warehouse),
        **_tables_metadata(observation),
        **_queries_metadata(observation),
        **_loads_metadata(observation),
        "regressed": dg.MetadataValue.bool(observation.regressed),
        "regressions": dg.MetadataValue.json([r.to_dict() for r in observation.regressions]),
        "history": dg.MetadataValue.path(lake.path(history.ROOT)),
    }


def data_version(observation: Observation) -> dg.DataVersion:
    """Changes when a table's row count or size does."""
    sizes = [(t.table, t.rows, t.size_bytes) for t in observation.tables]
    return dg.DataVersion(hashlib.sha256(json.dumps(sizes).encode()).hexdigest()[:16])


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            WAREHOUSE_METRICS,
            deps=LOADED,
            group_name="monitoring",
            description="Table sizes and row counts, slowest statements and load times of the warehouse, with "
            "their history in the lake; flags a load or statement slower than twice its median.",
        )
    ],
    name="warehouse_metrics",
)
def warehouse_metrics(
    context: dg.AssetExecutionContext, config: WarehouseMetricsConfig, lake: LocalLake, warehouse: Warehouse
) -> Iterator[dg.ObserveResult]:
    observation = observe_warehouse(lake, warehouse, context.instance, load_steps(), config.policy())
    if not observation.queries.available:
        context.log.warning(observation.queries.note)
    for regression in observation.regressions:
        context.log.warning(f"regression: {regression.describe()}")
    yield dg.ObserveResult(
        asset_key=WAREHOUSE_METRICS,
        metadata=observation_metadata(observation, lake),
        data_version=data_version(observation),
    )


monitoring_assets = [warehouse_metrics]
