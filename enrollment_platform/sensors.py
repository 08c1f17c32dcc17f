"""Sensors: a run when raw files arrive or change, and notifications when a run ends (the daemon's path).

- `raw_files_sensor` lists the `raw_layer` resource (the local folder or the S3 twin, one implementation),
  compares it with its cursor (JSON {relative path: identity}) and requests one run of the job for the new or
  changed files, covering their ingestion dates; its run key is derived from those files, so a repeated tick
  requests nothing new.
- `notify_run_success` / `notify_run_failure` send, through the `notifier` resource, the run's notification
  and one per failed asset check, read back from the instance. Runs made by `enrollment-platform run` are
  in-process runs the daemon does not match to this code location: the CLI notifies about them itself.
"""

import hashlib
import json
from typing import TYPE_CHECKING, Protocol

import dagster as dg

from enrollment_platform.config import Catalog, load_catalog
from enrollment_platform.notifications import run_notifications, send
from enrollment_platform.partitions import ingest_date, range_tags
from enrollment_platform.resources.notifier import Notifier
from enrollment_platform.resources.raw import RawFile, RawInventory

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

TRIGGER_TAG = "enrollment/trigger"
RUN_KEY_LENGTH = 24


class RawListing(Protocol):
    """What the sensor needs of a raw layer: `LocalRawLayer` and `S3RawLayer` both have it."""

    def inventory(self, catalog: Catalog) -> RawInventory: ...


def file_identity(raw_file: RawFile) -> str:
    """Size and ETag on an object store, size and modification time on a local folder."""
    return f"{raw_file.size_bytes}:{raw_file.etag or raw_file.modified_ns}"


def raw_snapshot(raw_layer: RawListing) -> dict[str, RawFile]:
    """Every readable raw file by its path inside the raw layer."""
    inventory = raw_layer.inventory(load_catalog())
    return {f.relative: f for files in inventory.files.values() for f in files}


def new_or_changed(previous: dict[str, str], current: dict[str, str]) -> list[str]:
    return sorted(path for path, identity in current.items() if previous.get(path) != identity)


def raw_run_request(files: list[RawFile]) -> dg.RunRequest:
    """One run over the files' ingestion dates, keyed by the files and their identities."""
    identities = {f.relative: file_identity(f) for f in files}
    digest = hashlib.sha256(json.dumps(identities, sort_keys=True).encode()).hexdigest()[:RUN_KEY_LENGTH]
    dates = sorted(ingest_date(f.relative, f.modified_ns) for f in files)
    tags = {TRIGGER_TAG: "raw_files_sensor", **range_tags(dates[0], dates[-1])}
    return dg.RunRequest(run_key=f"raw-{digest}", tags=tags)


def evaluate_raw_files(context: dg.SensorEvaluationContext, raw_layer: RawListing) -> dg.RunRequest | dg.SkipReason:
    """Compare the raw layer with the cursor; request a run for what is new or changed, move the cursor."""
    files = raw_snapshot(raw_layer)
    current = {path: file_identity(f) for path, f in files.items()}
    changed = new_or_changed(json.loads(context.cursor) if context.cursor else {}, current)
    context.update_cursor(json.dumps(current, sort_keys=True))
    if not changed:
        return dg.SkipReason(f"no new or changed raw files among {len(current)}")
    context.log.info(f"{len(changed)} new or changed raw files: {', '.join(changed[:10])}")
    return raw_run_request([files[path] for path in changed])


def build_raw_files_sensor(job: "UnresolvedAssetJobDefinition") -> dg.SensorDefinition:
    @dg.sensor(
        name="raw_files_sensor",
        job=job,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests a run when raw files are new or changed (local folder or S3 prefix).",
    )
    def raw_files_sensor(context: dg.SensorEvaluationContext, raw_layer: dg.ResourceParam[RawListing]):
        return evaluate_raw_files(context, raw_layer)

    return raw_files_sensor


def notify_finished_run(context: dg.RunStatusSensorContext, notifier: Notifier, success: bool) -> None:
    """Read the run's events from the instance and send its notifications."""
    run = context.dagster_run
    send(notifier, run_notifications(run.run_id, run.job_name, success, context.instance.all_logs(run.run_id)))


def build_notification_sensors() -> list[dg.SensorDefinition]:
    """One sensor per final run status, for every job of this code location."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="notify_run_success",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends the run-success notification (counts, DQ scores) and one per failed asset check.",
    )
    def notify_run_success(context: dg.RunStatusSensorContext, notifier: Notifier) -> None:
        notify_finished_run(context, notifier, success=True)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.FAILURE,
        name="notify_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends the run-failure notification (failed steps, errors) and one per failed asset check.",
    )
    def notify_run_failure(context: dg.RunStatusSensorContext, notifier: Notifier) -> None:
        notify_finished_run(context, notifier, success=False)

    return [notify_run_success, notify_run_failure]


def build_sensors(job: "UnresolvedAssetJobDefinition") -> list[dg.SensorDefinition]:
    """Every sensor of the code location: the raw-file sensor for `job` and the notification sensors."""
    return [build_raw_files_sensor(job), *build_notification_sensors()]
