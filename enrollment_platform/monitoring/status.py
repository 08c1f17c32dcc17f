"""What `enrollment-platform status` reports: the last pipeline runs from the Dagster instance under
$ENROLLMENT_HOME/dagster (outcome, duration, per-dataset row counts and DQ score), the asset checks whose latest
evaluation failed, and the raw files not processed yet (in the raw layer, not in the bookmark ledger)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from rich import box
from rich.table import Table

from enrollment_platform.bookmarks import is_pending, load_ledger
from enrollment_platform.config import load_catalog
from enrollment_platform.notifications import DQ_SCORE, dagster_events, dataset_counts, failed_steps
from enrollment_platform.partitions import batch_key, ingest_date
from enrollment_platform.settings import Settings

PIPELINE_JOB = "enrollment_pipeline"
TRIGGER_TAG = "enrollment/trigger"
HEADERS = {
    "rows_in": "in",
    "rows_out": "out",
    "rows_quarantined": "quar",
    "rows_duplicate": "dup",
    DQ_SCORE: "DQ",
}
EVENT_TYPES = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.STEP_FAILURE,
}


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check evaluation in one run."""

    asset: str
    check: str
    passed: bool
    severity: str
    run_id: str


@dataclass
class RunReport:
    """One pipeline run: outcome, times, and per dataset rows_in/out/quarantined/duplicate and dq_score."""

    run_id: str
    status: str
    trigger: str
    batch: str
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    datasets: dict[str, dict[str, Any]]
    checks: list[CheckOutcome] = field(default_factory=list)
    failed_steps: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k != "checks"}
        return {**values, "failed_checks": [asdict(c) for c in self.failed_checks]}


@dataclass(frozen=True)
class PendingFile:
    """A raw file the next `enrollment-platform run` will process."""

    dataset: str
    relative: str
    ingest_date: str
    size_bytes: int


@dataclass
class StatusReport:
    home: str
    raw_uri: str
    runs: list[RunReport]
    pending: list[PendingFile]

    @property
    def failing_checks(self) -> list[CheckOutcome]:
        """Each check whose latest evaluation (among the runs shown) failed."""
        latest: dict[tuple[str, str], CheckOutcome] = {}
        for run in self.runs:  # newest first
            for check in run.checks:
                latest.setdefault((check.asset, check.check), check)
        return [c for c in latest.values() if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": self.home,
            "raw_uri": self.raw_uri,
            "runs": [r.to_dict() for r in self.runs],
            "failing_checks": [asdict(c) for c in self.failing_checks],
            "pending_files": [asdict(p) for p in self.pending],
            "pending_dates": sorted({p.ingest_date for p in self.pending}),
        }


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _batch(tags: dict[str, str]) -> str:
    try:
        return batch_key(tags)
    except dg.Failure:  # a run without an ingestion-date range (e.g. launched unpartitioned from the UI)
        return ""


def check_outcomes(events: list, run_id: str) -> list[CheckOutcome]:
    """Every asset check evaluation among a run's events."""
    return [
        CheckOutcome("/".join(e.asset_key.path), e.check_name, e.passed, e.severity.value, run_id)
        for e in (
            event.asset_check_evaluation_data
            for event in dagster_events(events)
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]


def run_report(instance: dg.DagsterInstance, record) -> RunReport:
    """One run's report from its record and its events in the instance."""
    run = record.dagster_run
    events = instance.all_logs(run.run_id, of_type=EVENT_TYPES)
    ended = record.end_time
    return RunReport(
        run_id=run.run_id,
        status=run.status.value,
        trigger=run.tags.get(TRIGGER_TAG, ""),
        batch=_batch(run.tags),
        started_at=_iso(record.start_time),
        ended_at=_iso(ended),
        duration_s=round(ended - record.start_time, 3) if ended and record.start_time else None,
        datasets=dataset_counts(events),
        checks=check_outcomes(events, run.run_id),
        failed_steps=failed_steps(events),
    )


def last_runs(instance: dg.DagsterInstance, limit: int, job_name: str = PIPELINE_JOB) -> list[RunReport]:
    """The `limit` latest runs of the pipeline job, newest first."""
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=limit)
    return [run_report(instance, record) for record in records]


def pending_raw_files(resources: dict) -> list[PendingFile]:
    """Raw files that are new or changed since the bookmark ledger recorded them, as `run` would find them."""
    inventory = resources["raw_layer"].inventory(load_catalog())
    files = [f for found in inventory.files.values() for f in found]
    ledger = load_ledger(resources["lake"])
    return [
        PendingFile(f.dataset, f.relative, ingest_date(f.relative, f.modified_ns), f.size_bytes)
        for f in files
        if is_pending(f, ledger)
    ]


def build_status(settings: Settings, limit: int) -> StatusReport:
    """The status of the installation under settings.home."""
    from enrollment_platform.definitions import raw_root, resources_for
    from enrollment_platform.runner import dagster_instance

    instance = dagster_instance(settings)
    try:
        runs = last_runs(instance, limit)
    finally:
        instance.dispose()
    return StatusReport(str(settings.home), raw_root(settings), runs, pending_raw_files(resources_for(settings)))


# --- rich tables --------------------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f}s"


def _count(values: dict[str, Any], name: str) -> str:
    value = values.get(name)
    if name == DQ_SCORE and isinstance(value, float):
        return f"{value:.2%}"
    return "" if value is None else str(value)


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...], wraps: str = "") -> Table:
    """A compact table; only the column `wraps` may wrap when the terminal is narrow."""
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=0, pad_edge=False, title_justify="left")
    for column in columns:
        justify = "left" if column in left else "right"
        table.add_column(
            column, justify=justify, no_wrap=column != wraps, overflow="fold" if column == wraps else "ellipsis"
        )
    return table


def _totals(run: RunReport) -> list[str]:
    """The run's counts added over its datasets, and the mean of their DQ scores."""
    totals = [sum(v.get(name) or 0 for v in run.datasets.values()) for name in HEADERS if name != DQ_SCORE]
    scores = [v[DQ_SCORE] for v in run.datasets.values() if isinstance(v.get(DQ_SCORE), float)]
    return [*map(str, totals), f"{sum(scores) / len(scores):.2%}" if scores else ""]


def runs_table(report: StatusReport) -> Table:
    """One row per run: outcome, batch, start, duration, counts over its datasets, mean DQ score, failed checks."""
    count = len(report.runs)
    title = "the last run" if count == 1 else f"the last {count} runs, newest first"
    columns = ("run", "outcome", "batch", "started", "took", *HEADERS.values(), "failed")
    table = _table(f"{title} (UTC; counts over all datasets, DQ their mean)", columns, columns[:3], "batch")
    for run in report.runs:
        style = "green" if run.status == "SUCCESS" else "red" if run.status == "FAILURE" else "yellow"
        started = (run.started_at or "")[5:16].replace("T", " ")
        cells = [run.run_id[:8], f"[{style}]{run.status}[/{style}]", run.batch, started, _duration(run.duration_s)]
        table.add_row(*cells, *_totals(run), str(len(run.failed_checks)))
    return table


def datasets_table(run: RunReport) -> Table:
    """Per dataset of one run: rows in, out, quarantined, duplicate and the DQ score."""
    table = _table(f"run {run.run_id[:8]} per dataset", ("dataset", *HEADERS.values()), ("dataset",))
    for dataset, values in run.datasets.items():
        table.add_row(dataset, *(_count(values, name) for name in HEADERS))
    return table


def checks_table(report: StatusReport) -> Table:
    table = _table(
        "failing asset checks (latest evaluation)", ("asset", "check", "severity", "run"), ("asset", "check")
    )
    for check in report.failing_checks:
        style = "red" if check.severity == "ERROR" else "yellow"
        table.add_row(check.asset, check.check, f"[{style}]{check.severity}[/{style}]", check.run_id[:8])
    return table


def pending_table(report: StatusReport) -> Table:
    columns = ("dataset", "file", "ingest date", "bytes")
    table = _table(f"raw files not processed yet, under {report.raw_uri}", columns, columns[:3], "file")
    for pending in report.pending:
        table.add_row(pending.dataset, pending.relative, pending.ingest_date, str(pending.size_bytes))
    return table
