"""Warehouse metrics on the embedded DuckDB warehouse: table sizes and row counts, profiled scans, load times from
the Dagster instance, history in the lake, and the regression warning (a table that really became slower to scan).
The regression rule itself is checked on given durations."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg
import pytest

from enrollment_platform.assets.monitoring import WAREHOUSE_METRICS, load_steps, warehouse_metrics
from enrollment_platform.monitoring import history
from enrollment_platform.monitoring.regressions import RegressionPolicy, find_regressions, judge
from enrollment_platform.monitoring.warehouse_metrics import load_timings, observe_warehouse, recent_means
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import DuckDBWarehouse, duckdb_path
from enrollment_platform.resources.warehouse.base import QueryLog, QueryStats
from enrollment_platform.runner import dagster_instance

OBSERVE = dg.define_asset_job("observe_warehouse_metrics", selection=dg.AssetSelection.assets(WAREHOUSE_METRICS))


def observe(lake: LocalLake, warehouse, instance: dg.DagsterInstance, **config) -> tuple[dict, list[str]]:
    """Run the observable asset once: its metadata and the warnings it logged."""
    defs = dg.Definitions(assets=[warehouse_metrics], jobs=[OBSERVE], resources={"lake": lake, "warehouse": warehouse})
    run_config = {"ops": {"warehouse_metrics": {"config": config}}} if config else None
    result = defs.resolve_job_def(OBSERVE.name).execute_in_process(instance=instance, run_config=run_config)
    assert result.success
    record = instance.fetch_observations(WAREHOUSE_METRICS, limit=1).records[0]
    metadata = {name: value.value for name, value in record.asset_observation.metadata.items()}
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    return metadata, warnings


@pytest.fixture(scope="module")
def pipeline_warehouse(tmp_path_factory):
    """A pipeline run in a home of its own (the shared generated run's instance also records other files' runs)."""
    from enrollment_platform.generator import generate_raw_layer
    from enrollment_platform.runner import run_pipeline
    from enrollment_platform_tests.conftest import local_settings

    raw = tmp_path_factory.mktemp("metrics_raw")
    generate_raw_layer(raw, 500, seed=17)
    settings = local_settings(tmp_path_factory.mktemp("metrics_home"), raw)
    summary = run_pipeline(settings)
    assert summary.success, summary.failures
    return settings, summary, DuckDBWarehouse(path=duckdb_path(settings.warehouse_url))


def test_table_stats_count_every_row_and_size_every_table(pipeline_warehouse):
    _, summary, warehouse = pipeline_warehouse
    stats = {t.table: t for t in warehouse.table_stats()}
    assert set(stats) == set(warehouse.tables())
    loaded = {table: values["rows"] for table, values in summary.warehouse.items() if "rows" in values}
    assert loaded and {table: stats[table].rows for table in loaded} == loaded
    block_size = warehouse.query("SELECT block_size FROM pragma_database_size()")[0][0]
    for table in stats.values():
        assert table.size_bytes > 0 and table.size_bytes % block_size == 0
    assert max(t.size_bytes for t in stats.values()) <= os.path.getsize(warehouse.path)


def test_duckdb_times_a_profiled_scan_of_every_table(pipeline_warehouse):
    _, _, warehouse = pipeline_warehouse
    log = warehouse.slow_queries()
    assert log.available and log.source == "duckdb profiler" and not log.cumulative
    assert {q.query_id for q in log.queries} == {f"scan:{table}" for table in warehouse.tables()}
    assert all(q.calls == 1 and q.mean_ms > 0 for q in log.queries)
    assert [q.mean_ms for q in log.queries] == sorted((q.mean_ms for q in log.queries), reverse=True)
    assert len(warehouse.slow_queries(limit=2).queries) == 2


def test_load_times_come_from_the_runs_warehouse_steps(pipeline_warehouse):
    settings, summary, _ = pipeline_warehouse
    instance = dagster_instance(settings)
    timings = load_timings(instance, load_steps(), runs=5)
    assert {t.table for t in timings} == set(load_steps().values())
    assert {t.run_id for t in timings} == set(summary.run_ids)
    record = instance.get_run_records(dg.RunsFilter(run_ids=[summary.run_id]))[0]
    assert all(0 < t.duration_ms <= (record.end_time - record.start_time) * 1000 for t in timings)


def test_observations_keep_their_history_in_the_lake(pipeline_warehouse, tmp_path):
    settings, summary, warehouse = pipeline_warehouse
    lake, instance = LocalLake(root=str(tmp_path / "lake")), dagster_instance(settings)
    first = observe_warehouse(lake, warehouse, instance, load_steps())
    second = observe_warehouse(lake, warehouse, instance, load_steps())
    assert len(lake.list(history.ROOT, history.TABLES)) == len(lake.list(history.ROOT, history.QUERIES)) == 2
    assert history.recorded_runs(lake) == set(summary.run_ids)  # each run's loads recorded once
    tables = history.read_rows(lake, history.TABLES)
    assert [(r["table"], r["rows"]) for r in tables] == [(t.table, t.rows) for t in first.tables + second.tables]
    loads = history.read_rows(lake, history.LOADS)
    assert sorted((r["table"], r["duration_ms"]) for r in loads) == sorted(
        (t.table, t.duration_ms) for t in second.loads
    )
    queries = history.read_rows(lake, history.QUERIES, last=1)
    assert {r["query_id"]: r["recent_ms"] for r in queries} == second.recent_ms
    assert not second.regressed  # one run and two observations: too little history to judge


def test_a_table_that_became_slower_to_scan_is_flagged_in_the_log_and_the_metadata(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    for table in ("growing", "steady"):
        warehouse.query(f"CREATE TABLE {table} AS SELECT range AS id, range * 0.5 AS amount FROM range(1000)")
    lake, instance = LocalLake(root=str(tmp_path / "lake")), dg.DagsterInstance.ephemeral()
    policy = RegressionPolicy()
    for _ in range(policy.min_history):
        metadata, warnings = observe(lake, warehouse, instance)
        assert metadata["regressed"] is False and not warnings
    warehouse.query("INSERT INTO growing SELECT range AS id, range * 0.5 AS amount FROM range(5000000)")
    # DuckDB scans the 5M rows in ~15 ms on a quiet machine: judge against a 5 ms floor, not the default 20 ms
    metadata, warnings = observe(lake, warehouse, instance, min_increase_ms=5.0)
    assert metadata["regressed"] is True
    assert [(r["kind"], r["name"]) for r in metadata["regressions"]] == [("query", "scan:growing")]
    assert metadata["regressions"][0]["ratio"] > policy.factor
    assert any("regression: query scan:growing" in message for message in warnings)
    assert metadata["rows.growing"] == 5_001_000 and metadata["query_source"] == "duckdb profiler"


def test_a_duration_regresses_above_twice_the_median_of_its_history():
    policy = RegressionPolicy(factor=2.0, window=3, min_history=3, min_increase_ms=20.0)
    assert judge("load", "t", 500.0, [100.0, 120.0], policy) is None  # too little history
    assert judge("load", "t", 215.0, [100.0, 110.0, 120.0], policy) is None  # not above 2x the median (110)
    slow = judge("load", "t", 250.0, [900.0, 100.0, 110.0, 120.0], policy)  # only the last `window` count
    assert slow is not None and (slow.median_ms, slow.history) == (110.0, 3)
    assert judge("query", "q", 5.0, [1.0, 1.0, 1.0], policy) is None  # 5x, but only 4 ms slower: noise
    found = find_regressions("load", {"a": 250.0, "b": 100.0}, {"a": [100.0] * 3, "b": [100.0] * 3}, policy)
    assert [(r.name, r.ratio) for r in found] == [("a", 2.5)]


def test_cumulative_statistics_are_judged_on_the_calls_since_the_last_observation():
    log = QueryLog(
        "pg_stat_statements",
        True,
        "",
        (QueryStats("1", "a", 12, 13.0, 156.0), QueryStats("2", "b", 5, 2.0, 10.0), QueryStats("3", "c", 3, 4.0, 12.0)),
        cumulative=True,
    )
    previous = {
        "1": {"calls": 10, "total_ms": 100.0},
        "2": {"calls": 5, "total_ms": 10.0},
        "3": {"calls": 9, "total_ms": 90.0},
    }
    # 1: 2 calls took 56 ms since; 2: not run since (left out); 3: statistics were reset (its own mean)
    assert recent_means(log, previous) == {"1": 28.0, "3": 4.0}
    as_reported = QueryLog("SYS_QUERY_HISTORY", True, "", log.queries)
    assert recent_means(as_reported, previous) == {"1": 13.0, "2": 2.0, "3": 4.0}


def test_the_metrics_asset_is_observable_and_not_in_the_pipeline_job():
    from enrollment_platform.definitions import build_assets_and_checks
    from enrollment_platform.jobs import all_assets_job

    assert warehouse_metrics in build_assets_and_checks()[0] and warehouse_metrics.is_observable
    assert WAREHOUSE_METRICS not in all_assets_job.selection.resolve(build_assets_and_checks()[0])
    loaded = {dep.asset_key for dep in warehouse_metrics.specs_by_key[WAREHOUSE_METRICS].deps}
    assert {key.path[-1] for key in loaded} == set(load_steps().values())
    assert all(Path(*key.path).parts[0] == "warehouse" for key in loaded)
