"""One observation of the warehouse: table sizes and row counts, the slowest statements, the load time of each
warehouse table in the last runs; all kept in the lake (see `history`), and every load or statement that became
slower than its own history (see `regressions`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import median

import dagster as dg

from enrollment_platform.monitoring import history
from enrollment_platform.monitoring.regressions import Regression, RegressionPolicy, find_regressions
from enrollment_platform.resources.warehouse import Warehouse
from enrollment_platform.resources.warehouse.base import QueryLog, TableStats

PIPELINE_JOB = "enrollment_pipeline"


@dataclass(frozen=True)
class LoadTiming:
    """How long one warehouse table took to load in one run (the duration of its asset's step)."""

    run_id: str
    started_at: datetime
    table: str
    duration_ms: float


@dataclass
class Observation:
    """What one observation found; `recent_ms` is each statement's mean time since the previous observation."""

    observed_at: datetime
    warehouse: str
    tables: list[TableStats]
    queries: QueryLog
    recent_ms: dict[str, float]
    loads: list[LoadTiming]
    load_medians: dict[str, float]
    regressions: list[Regression] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def load_timings(
    instance: dg.DagsterInstance, load_steps: dict[str, str], runs: int, job_name: str = PIPELINE_JOB
) -> list[LoadTiming]:
    """The load time of each table (`load_steps`: step key -> table) in the last `runs` successful runs."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=runs
    )
    timings = []
    for record in (r for r in records if r.start_time):
        run_id, started = record.dagster_run.run_id, datetime.fromtimestamp(record.start_time, UTC)
        for step in instance.get_run_step_stats(run_id, step_keys=list(load_steps)):
            if step.status.value == "SUCCESS" and step.start_time and step.end_time:
                milliseconds = (step.end_time - step.start_time) * 1000
                timings.append(LoadTiming(run_id, started, load_steps[step.step_key], milliseconds))
    return sorted(timings, key=lambda t: (t.started_at, t.table))


def record_loads(lake, timings: list[LoadTiming]) -> list[dict]:
    """Add the runs not yet in the lake's load history; return the whole history, oldest run first."""
    known = history.recorded_runs(lake)
    by_run: dict[str, list[LoadTiming]] = defaultdict(list)
    for timing in timings:
        by_run[timing.run_id].append(timing)
    for run_id, loads in by_run.items():
        if run_id not in known:
            history.write_rows(lake, history.LOADS, history.run_parts(run_id), [vars(t) for t in loads])
    return sorted(history.read_rows(lake, history.LOADS), key=lambda r: (r["started_at"], r["table"]))


def latest_run_loads(rows: list[dict]) -> tuple[list[LoadTiming], dict[str, list[float]]]:
    """The loads of the latest run in the history, and per table the durations of the runs before it."""
    if not rows:
        return [], {}
    latest = max(rows, key=lambda r: r["started_at"])["run_id"]
    current = [LoadTiming(**r) for r in rows if r["run_id"] == latest]
    past: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["run_id"] != latest:
            past[row["table"]].append(row["duration_ms"])
    return current, dict(past)


def recent_means(log: QueryLog, previous: dict[str, dict]) -> dict[str, float]:
    """Per statement, its mean time since the previous observation: from the differences of cumulative figures
    (pg_stat_statements), else as reported. A statement not run since the previous observation is left out."""
    recent = {}
    for query in log.queries:
        before = previous.get(query.query_id) if log.cumulative else None
        if before is None or query.calls < before["calls"]:  # first seen, or the statistics were reset
            recent[query.query_id] = query.mean_ms
        elif query.calls > before["calls"]:
            recent[query.query_id] = (query.total_ms - before["total_ms"]) / (query.calls - before["calls"])
    return recent


def query_history(lake, source: str, policy: RegressionPolicy) -> tuple[dict[str, dict], dict[str, list[float]]]:
    """From the last observations of this source: the latest row per statement, and its recent times in order."""
    rows = [r for r in history.read_rows(lake, history.QUERIES, last=policy.window) if r["source"] == source]
    latest: dict[str, dict] = {}
    series: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        latest[row["query_id"]] = row
        if row["recent_ms"] is not None:
            series[row["query_id"]].append(row["recent_ms"])
    return latest, dict(series)


def record_observation(lake, observation: Observation) -> None:
    """Append the observation's tables and statements to the lake's history."""
    when, name = observation.observed_at, observation.warehouse
    tables = [{"observed_at": when, "warehouse": name, **vars(t)} for t in observation.tables]
    history.write_rows(lake, history.TABLES, history.observation_parts(history.TABLES, when), tables)
    log = observation.queries
    queries = [
        {"observed_at": when, "source": log.source, **vars(q), "recent_ms": observation.recent_ms.get(q.query_id)}
        for q in log.queries
    ]
    history.write_rows(lake, history.QUERIES, history.observation_parts(history.QUERIES, when), queries)


def observe_warehouse(
    lake,
    warehouse: Warehouse,
    instance: dg.DagsterInstance,
    load_steps: dict[str, str],
    policy: RegressionPolicy | None = None,
) -> Observation:
    """Measure the warehouse, judge the latest loads and the statements against their history, record it all."""
    policy = policy or RegressionPolicy()
    log = warehouse.slow_queries()
    previous, query_series = query_history(lake, log.source, policy)
    recent = recent_means(log, previous)
    loads, load_series = latest_run_loads(record_loads(lake, load_timings(instance, load_steps, policy.window + 1)))
    observation = Observation(
        observed_at=datetime.now(UTC),
        warehouse=warehouse.dialect.name,
        tables=warehouse.table_stats(),
        queries=log,
        recent_ms=recent,
        loads=loads,
        load_medians={t: median(v[-policy.window :]) for t, v in load_series.items()},
        regressions=[
            *find_regressions("load", {t.table: t.duration_ms for t in loads}, load_series, policy),
            *find_regressions("query", recent, query_series, policy),
        ],
    )
    record_observation(lake, observation)
    return observation
