"""`enrollment-platform run`: materialize every asset in-process and summarize what happened to each row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg

from enrollment_platform.bookmarks import load_ledger, pending_dates
from enrollment_platform.config import load_catalog
from enrollment_platform.definitions import all_assets_job, build_definitions, raw_root, resources_for
from enrollment_platform.notifications import notify_run
from enrollment_platform.partitions import range_tags
from enrollment_platform.settings import Settings, SettingsError

SUMMARY_COUNTS = ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate")


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


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """A persistent instance under $ENROLLMENT_HOME/dagster, so `dagster dev` with DAGSTER_HOME there shows runs."""
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.from_config(str(home))


def _metadata_values(metadata: dict) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def summarize(result: dg.ExecuteInProcessResult, settings: Settings, raw_uri: str) -> RunSummary:
    summary = RunSummary(result.run_id, result.success, raw_uri, settings.lake_uri, settings.warehouse_url)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        layer, name = materialization.asset_key.path
        values = _metadata_values(materialization.metadata)
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


def pending_ranges(settings: Settings) -> list[tuple[str, str]]:
    """Runs of consecutive ingestion dates that have raw files not yet processed, oldest first.

    Each run becomes one batch; dates far apart are separate batches, so a stray old file does not make one run
    span (and record) every day in between.
    """
    resources = resources_for(settings)
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


def execute_batch(
    settings: Settings,
    first: str,
    last: str,
    rules_by_dataset: dict | None = None,
    log_level: str = "WARNING",
) -> dg.ExecuteInProcessResult:
    """Run the whole graph in this process for the raw files of ingestion dates first..last not yet processed."""
    job = build_definitions(settings, rules_by_dataset).resolve_job_def(all_assets_job.name)
    return job.execute_in_process(
        instance=dagster_instance(settings),
        raise_on_error=False,
        tags={"enrollment/trigger": "cli", **range_tags(first, last)},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def run_pipeline(settings: Settings, log_level: str = "WARNING") -> RunSummary:
    """Materialize every asset for the raw files not yet processed, one batch per run of consecutive ingestion
    dates, oldest first; the summary says what became of every row. With nothing new, nothing runs."""
    summaries = []
    for first, last in pending_ranges(settings):
        result = execute_batch(settings, first, last, log_level=log_level)
        notify_run(resources_for(settings)["notifier"], result)
        summaries.append(summarize(result, settings, raw_root(settings)))
        if not result.success:
            break
    if not summaries:
        return RunSummary("", True, raw_root(settings), settings.lake_uri, settings.warehouse_url, nothing_new=True)
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
    result = execute_batch(settings, first, last, log_level=log_level)
    notify_run(resources_for(settings)["notifier"], result)
    return summarize(result, settings, raw_root(settings))
