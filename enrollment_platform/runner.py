"""`enrollment-platform run`: materialize every asset in-process and summarize what happened to each row."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import duckdb
import sqlalchemy
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

from enrollment_platform.assets.common import metadata_values
from enrollment_platform.bookmarks import load_ledger, pending_dates
from enrollment_platform.config import load_catalog
from enrollment_platform.definitions import all_assets_job, build_definitions, raw_root, resources_for
from enrollment_platform.notifications import notify_run
from enrollment_platform.partitions import range_tags
from enrollment_platform.resources.warehouse.embedded import DuckDBWarehouse
from enrollment_platform.settings import Settings, SettingsError

SUMMARY_COUNTS = ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate")

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: str
    success: bool
    raw_uri: str
    lake_uri: str
    warehouse_url: str
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    warehouse: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    nothing_new: bool = False
    run_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_ids": self.run_ids or [self.run_id],
            "success": self.success,
            "raw_uri": self.raw_uri,
            "lake_uri": self.lake_uri,
            "warehouse_url": self.warehouse_url,
            "datasets": self.datasets,
            "warehouse": self.warehouse,
            "nothing_new": self.nothing_new,
            "checks": self.checks,
            "failures": self.failures,
        }


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's default SQLite event log (the same files and tables), keeping one open connection per database.

    The default opens a new engine and connection for every event it stores and closes it after, and closing the
    last connection of a WAL database checkpoints it: ~10 ms per event, a few hundred events per run. Here each
    database (the run's shard, the index) keeps its connection until `dispose`; every write is still its own
    committed transaction, and other processes (`dagster dev`) read the files as before.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        self._engines: dict[str, Engine] = {}
        self._tables: set[str] = set()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = sqlalchemy.create_engine(
                    self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
                )
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Asked before most asset queries; a table, once there, stays."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (runs, event log, schedules under one folder) with the pooled event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage = PooledSqliteEventLogStorage(self._event_log_storage._base_dir)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


_DEFAULT_STORAGE = (DagsterSqliteStorage.__module__, DagsterSqliteStorage.__name__)


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """A persistent instance under $ENROLLMENT_HOME/dagster, so `dagster dev` with DAGSTER_HOME there shows runs.

    With the default storage (no dagster.yaml there, or one that keeps SQLite) this process writes the same files
    through `PooledSqliteStorage`; a configured storage (e.g. PostgreSQL) is used as configured.
    """
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    ref = InstanceRef.from_dir(str(home))
    data = ref.storage_data
    if data is not None and (data.module_name, data.class_name) == _DEFAULT_STORAGE:
        pooled = ConfigurableClassData(__name__, PooledSqliteStorage.__name__, data.config_yaml)
        ref = ref._replace(storage_data=pooled)
    return dg.DagsterInstance.from_ref(ref)


def summarize(result: dg.ExecuteInProcessResult, settings: Settings, raw_uri: str) -> RunSummary:
    summary = RunSummary(result.run_id, result.success, raw_uri, settings.lake_uri, settings.warehouse_url)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        layer, name = materialization.asset_key.path
        values = metadata_values(materialization.metadata)
        if layer == "raw":
            summary.datasets.setdefault(name, {}).update(
                {k: values[k] for k in ("files", "files_rejected", "lines_rejected") if k in values}
            )
        elif layer == "validated":
            summary.datasets.setdefault(name, {})["dq_score"] = values.get("dq_score")
        elif layer == "curated":
            summary.datasets.setdefault(name, {}).update(
                {k: values[k] for k in (*SUMMARY_COUNTS, "reconciled") if k in values}
            )
        elif layer == "warehouse":
            summary.warehouse[name] = {k: values[k] for k in ("rows", "inserted", "updated", "deleted") if k in values}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            summary.checks.append(
                {
                    "asset": "/".join(evaluation.asset_key.path),
                    "check": evaluation.check_name,
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value,
                }
            )
        if event.is_step_failure:
            error = event.step_failure_data.error
            summary.failures.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return summary


def pending_ranges(settings: Settings, resources: dict | None = None) -> list[tuple[str, str]]:
    """Runs of consecutive ingestion dates that have raw files not yet processed, oldest first.

    Each run becomes one batch; dates far apart are separate batches, so a stray old file does not make one run
    span (and record) every day in between. `resources`: those of `resources_for(settings)`, when at hand.
    """
    resources = resources or resources_for(settings)
    inventory = resources["raw_layer"].inventory(load_catalog())
    files = [f for found in inventory.files.values() for f in found]
    ranges: list[tuple[str, str]] = []
    for day in pending_dates(files, load_ledger(resources["lake"])):
        if ranges and date.fromisoformat(day) - date.fromisoformat(ranges[-1][1]) == timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def pending_range(settings: Settings) -> tuple[str, str] | None:
    """The first and last ingestion dates with raw files not yet processed, or None when all are."""
    ranges = pending_ranges(settings)
    return (ranges[0][0], ranges[-1][1]) if ranges else None


def combine(summaries: list[RunSummary]) -> RunSummary:
    """One summary for several batch runs: counts add up, the latest state of the warehouse is reported."""
    last = summaries[-1]
    combined = RunSummary(
        last.run_id,
        all(s.success for s in summaries),
        last.raw_uri,
        last.lake_uri,
        last.warehouse_url,
        warehouse=last.warehouse,
        run_ids=[s.run_id for s in summaries],
    )
    for summary in summaries:
        for dataset, values in summary.datasets.items():
            totals = combined.datasets.setdefault(dataset, {})
            for name, value in values.items():
                if isinstance(value, int) and not isinstance(value, bool) and name != "dq_score":
                    totals[name] = totals.get(name, 0) + value
                elif name == "reconciled":
                    totals[name] = totals.get(name, True) and value
                else:
                    totals[name] = value
    combined.checks = [c for s in summaries for c in s.checks]
    combined.failures = [f for s in summaries for f in s.failures]
    return combined


@contextmanager
def warehouse_held_open(resources: dict) -> Iterator[None]:
    """Keep the embedded warehouse's file open for an in-process run: each of the run's ~60 connections then
    joins the open database, where opening the file (and checkpointing it when the connection closed) cost
    10–20 ms each. Only in process: under a multiprocess executor, steps in other processes must be able to
    open the file, which DuckDB locks for one process."""
    warehouse = resources.get("warehouse")
    held = warehouse.connect() if isinstance(warehouse, DuckDBWarehouse) else nullcontext()
    try:
        held.__enter__()
    except (duckdb.Error, OSError):  # e.g. locked by another process: the warehouse steps will say so, and retry
        held = nullcontext()
    try:
        yield
    finally:
        try:
            held.__exit__(None, None, None)
        except duckdb.Error as error:  # the run's commits are in the file's WAL: the next open replays them
            log.warning("closing the warehouse after the run failed: %s", error)


def execute_batch(
    settings: Settings,
    first: str,
    last: str,
    rules_by_dataset: dict | None = None,
    log_level: str = "WARNING",
    resources: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the whole graph in this process for the raw files of ingestion dates first..last not yet processed."""
    resources = resources or resources_for(settings)
    job = build_definitions(settings, rules_by_dataset, resources).resolve_job_def(all_assets_job.name)
    # the instance is disposed: the event log's connections close with the run
    with dagster_instance(settings) as instance, warehouse_held_open(resources):
        return job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={"enrollment/trigger": "cli", **range_tags(first, last)},
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )


def run_pipeline(settings: Settings, log_level: str = "WARNING") -> RunSummary:
    """Materialize every asset for the raw files not yet processed, one batch per run of consecutive ingestion
    dates, oldest first; the summary says what became of every row. With nothing new, nothing runs."""
    raw_uri = raw_root(settings)
    resources = resources_for(settings, raw_uri)  # one look at the raw layer for the whole run
    summaries = []
    for first, last in pending_ranges(settings, resources):
        result = execute_batch(settings, first, last, log_level=log_level, resources=resources)
        notify_run(resources["notifier"], result)
        summaries.append(summarize(result, settings, raw_uri))
        if not result.success:
            break
    if not summaries:
        return RunSummary("", True, raw_uri, settings.lake_uri, settings.warehouse_url, nothing_new=True)
    return combine(summaries)


def backfill(settings: Settings, first: str, last: str, log_level: str = "WARNING") -> RunSummary:
    """One batch over the ingestion dates first..last (files already processed are skipped)."""
    for day in (first, last):
        try:
            date.fromisoformat(day)
        except ValueError as error:
            raise SettingsError(f"{day!r} is not a date: use YYYY-MM-DD") from error
    if last < first:
        raise SettingsError(f"--to {last} is before --from {first}")
    raw_uri = raw_root(settings)
    resources = resources_for(settings, raw_uri)
    result = execute_batch(settings, first, last, log_level=log_level, resources=resources)
    notify_run(resources["notifier"], result)
    return summarize(result, settings, raw_uri)
