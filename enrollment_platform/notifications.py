"""The notifications a run sends, built from its Dagster events (pure functions, shared by both paths).

Both the run status sensors (runs launched by `dagster dev`/the daemon, events read back from the instance as
EventLogEntry objects) and `enrollment-platform run` (in-process, DagsterEvent objects of the result) build
the same three notifications: run success (per dataset counts and DQ score), run failure (the failing steps
and their errors) and one per failed asset check, blocking or not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import dagster as dg

from enrollment_platform.assets.curated import Reconciliation
from enrollment_platform.resources.notifier import Notifier

log = logging.getLogger(__name__)

RUN_SUCCESS = "run_success"
RUN_FAILURE = "run_failure"
CHECK_FAILURE = "check_failure"
COUNTS = tuple(f.name for f in fields(Reconciliation))  # rows_in, rows_out, rows_quarantined, rows_duplicate
DQ_SCORE = "dq_score"
COUNTS_LAYER, SCORE_LAYER = "curated", "validated"
METADATA_TEXT_LIMIT = 300  # characters of one metadata value kept in a check notification
METADATA_ITEMS_LIMIT = 10  # items of a list metadata value kept in a check notification
SHORT_RUN_ID = 8

Event = dg.DagsterEvent | dg.EventLogEntry


@dataclass(frozen=True)
class Notification:
    kind: str
    subject: str
    message: dict[str, Any]


def dagster_events(events: Iterable[Event]) -> list[dg.DagsterEvent]:
    """The DagsterEvents of a mix of DagsterEvent and EventLogEntry objects (plain log lines are dropped)."""
    unwrapped = (e.dagster_event if isinstance(e, dg.EventLogEntry) else e for e in events)
    return [e for e in unwrapped if e is not None]


def plain(value: Any) -> Any:
    """A metadata value as JSON-friendly Python, shortened for a message."""
    value = getattr(value, "value", value)
    if isinstance(value, str):
        return value if len(value) <= METADATA_TEXT_LIMIT else value[:METADATA_TEXT_LIMIT] + "…"
    if isinstance(value, list | tuple):
        return [plain(v) for v in value[:METADATA_ITEMS_LIMIT]]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float):
        return value
    return plain(str(value))


def dataset_counts(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """Per dataset: rows_in/out/quarantined/duplicate of `curated/<d>` and dq_score of `validated/<d>`."""
    datasets: dict[str, dict[str, Any]] = {}
    for event in dagster_events(events):
        if event.event_type != dg.DagsterEventType.ASSET_MATERIALIZATION:
            continue
        layer, *rest = event.asset_key.path
        metadata = event.materialization.metadata
        names = COUNTS if layer == COUNTS_LAYER else (DQ_SCORE,) if layer == SCORE_LAYER else ()
        for name in (n for n in names if n in metadata):
            datasets.setdefault("/".join(rest), {})[name] = plain(metadata[name])
    return dict(sorted(datasets.items()))


def failed_steps(events: Iterable[Event]) -> list[dict[str, str]]:
    """The steps that failed, each with its error message (first line of the error is enough for a subject)."""
    steps = []
    for event in dagster_events(events):
        if event.is_step_failure:
            error = event.step_failure_data.error
            steps.append({"step_key": event.step_key, "error": error.message.strip() if error else "failed"})
    return steps


def run_error(events: Iterable[Event]) -> str:
    """The run failure's own message (a run can fail with no failed step, e.g. a crashed run worker)."""
    for event in dagster_events(events):
        if event.is_run_failure:
            error = event.job_failure_data.error if event.event_specific_data else None
            return (error.message if error else event.message or "").strip()
    return ""


def failed_checks(events: Iterable[Event]) -> list:
    """The AssetCheckEvaluation of every check that did not pass, blocking or not."""
    return [
        event.asset_check_evaluation_data
        for event in dagster_events(events)
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and not event.asset_check_evaluation_data.passed
    ]


def _run(run_id: str, job_name: str) -> str:
    return f"{job_name} run {run_id[:SHORT_RUN_ID]}"


def run_success(run_id: str, job_name: str, events: list[Event]) -> Notification:
    datasets = dataset_counts(events)
    checks = failed_checks(events)
    subject = f"{_run(run_id, job_name)} succeeded: {len(datasets)} datasets, {len(checks)} failed checks"
    message = {"run_id": run_id, "job": job_name, "status": "SUCCESS", "datasets": datasets}
    return Notification(RUN_SUCCESS, subject, {**message, "failed_checks": len(checks)})


def run_failure(run_id: str, job_name: str, events: list[Event]) -> Notification:
    steps = failed_steps(events)
    keys = ", ".join(s["step_key"] for s in steps) or "no step"
    message = {"run_id": run_id, "job": job_name, "status": "FAILURE", "failed_steps": steps}
    message.update(error=run_error(events), datasets=dataset_counts(events))
    return Notification(RUN_FAILURE, f"{_run(run_id, job_name)} failed: {keys}", message)


def check_failure(run_id: str, job_name: str, evaluation) -> Notification:
    """One failed asset check: asset, check name, severity, whether it blocks, its metadata in short."""
    asset = evaluation.asset_key.to_user_string()
    severity = evaluation.severity.value
    message = {
        "run_id": run_id,
        "job": job_name,
        "asset": asset,
        "check": evaluation.check_name,
        "severity": severity,
        "blocking": bool(evaluation.blocking),
        "description": evaluation.description,
        "metadata": {name: plain(value) for name, value in evaluation.metadata.items()},
    }
    return Notification(CHECK_FAILURE, f"{severity} check failed: {asset} {evaluation.check_name}", message)


def run_notifications(run_id: str, job_name: str, success: bool, events: Iterable[Event]) -> list[Notification]:
    """The run's notification (success or failure) followed by one per failed asset check."""
    events = list(events)
    first = run_success(run_id, job_name, events) if success else run_failure(run_id, job_name, events)
    return [first, *(check_failure(run_id, job_name, c) for c in failed_checks(events))]


def send(notifier: Notifier, notifications: Iterable[Notification]) -> None:
    for notification in notifications:
        notifier.notify(notification.kind, notification.subject, notification.message)


def notify_run(notifier: Notifier, result: dg.ExecuteInProcessResult) -> list[Notification]:
    """The in-process path: notify about a finished run; a notifier error is logged, the run result stands."""
    notifications = run_notifications(result.run_id, result.job_def.name, result.success, result.all_events)
    try:
        send(notifier.process_config_and_initialize(), notifications)  # resolves dg.EnvVar settings
    except Exception:
        log.exception("could not send the notifications of run %s", result.run_id)
    return notifications
