"""Notifications of real runs on the original raw files: success, failure and failed checks, through every twin.

Two runs: the session's successful CLI run (`original_run` in conftest.py, through `run_pipeline`; on these files
the non-blocking `near_duplicate_entities` check of instructors fails: the same five people under two ids), and
a courses-only run whose warehouse refuses the load (a run failure), kept in an in-memory instance.
"""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import boto3
import dagster as dg
import pytest
from moto import mock_aws

from enrollment_platform.config import load_catalog
from enrollment_platform.definitions import all_assets_job, build_assets_and_checks, resources_for
from enrollment_platform.notifications import (
    CHECK_FAILURE,
    RUN_FAILURE,
    RUN_SUCCESS,
    notify_run,
    run_notifications,
    send,
)
from enrollment_platform.partitions import ingest_date, range_tags
from enrollment_platform.resources.notifier import (
    WEBHOOK_URL_VARIABLE,
    LocalNotifier,
    SnsNotifier,
    local_notifier,
    sns_subject,
)
from enrollment_platform.resources.raw import LocalRawLayer
from enrollment_platform.resources.warehouse import DuckDBWarehouse
from enrollment_platform.runner import dagster_instance
from enrollment_platform.sensors import build_notification_sensors
from enrollment_platform_tests.conftest import fake_aws_account, local_settings

REGION = "eu-west-1"
COURSES_CHAIN = [
    dg.AssetKey([layer, "courses"]) for layer in ("raw", "standardized", "deduped", "validated", "redacted", "curated")
] + [dg.AssetKey(["warehouse", "course_dim"])]
REFUSAL = "warehouse refused the load: disk quota exceeded"


class RefusingWarehouse(DuckDBWarehouse):
    """A warehouse whose every load fails (as a data error, so the run fails without retry delays)."""

    def load_dimension(self, spec, parquet, changes=None):
        raise dg.Failure(REFUSAL, allow_retries=False)


@pytest.fixture(scope="module")
def success_run(original_run):
    """(settings, summary) of a successful CLI run; its notifier wrote $ENROLLMENT_HOME/notifications.jsonl."""
    return original_run


@pytest.fixture(scope="module")
def failed_run(original_raw, tmp_path_factory):
    """(instance, result) of a courses-only run whose warehouse load fails."""
    settings = local_settings(tmp_path_factory.mktemp("failed_home"), original_raw)
    assets, checks = build_assets_and_checks()
    resources = {**resources_for(settings), "warehouse": RefusingWarehouse(path=str(settings.home / "w.duckdb"))}
    job = dg.Definitions(assets=assets, asset_checks=checks, jobs=[all_assets_job], resources=resources)
    courses = LocalRawLayer(root=str(original_raw)).inventory(load_catalog()).files["courses"]
    dates = sorted(ingest_date(f.relative, f.modified_ns) for f in courses)
    instance = dg.DagsterInstance.ephemeral()
    result = job.resolve_job_def(all_assets_job.name).execute_in_process(
        instance=instance, raise_on_error=False, tags=range_tags(dates[0], dates[-1]), asset_selection=COURSES_CHAIN
    )
    assert not result.success
    return instance, result


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_kind(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["kind"] == kind]


def assert_success_message(message: dict) -> None:
    enrollments = message["datasets"]["enrollments"]
    assert {k: enrollments[k] for k in ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate")} == {
        "rows_in": 140,
        "rows_out": 125,
        "rows_quarantined": 15,
        "rows_duplicate": 0,
    }
    assert 0 < enrollments["dq_score"] < 1  # 15 orphans broke the referential-integrity rule
    assert message["datasets"]["students"]["rows_in"] == 55
    assert message["status"] == "SUCCESS"


def assert_near_duplicate_check(checks: list[dict]) -> None:
    (found,) = [c["message"] for c in checks if c["message"]["check"] == "near_duplicate_entities"]
    assert found["asset"].endswith("/instructors")
    assert (found["severity"], found["blocking"]) == ("WARN", False)
    assert found["metadata"]["groups"] > 0
    assert found["metadata"]["sample_id_groups"]


def test_cli_run_appends_its_notifications_to_the_json_lines_file(success_run):
    settings, summary = success_run
    records = read_lines(settings.home / "notifications.jsonl")
    (success,) = by_kind(records, RUN_SUCCESS)
    assert success["message"]["run_id"] == summary.run_id
    assert summary.run_id[:8] in success["subject"]
    assert_success_message(success["message"])
    assert_near_duplicate_check(by_kind(records, CHECK_FAILURE))
    assert success["message"]["failed_checks"] == len(by_kind(records, CHECK_FAILURE))
    assert by_kind(records, RUN_FAILURE) == []


def test_failure_names_the_failing_step_and_its_error(failed_run):
    _, result = failed_run
    notifications = run_notifications(result.run_id, all_assets_job.name, False, result.all_events)
    failure = notifications[0]
    assert failure.kind == RUN_FAILURE
    assert failure.message["status"] == "FAILURE"
    assert [s["step_key"] for s in failure.message["failed_steps"]] == ["warehouse__course_dim"]
    assert REFUSAL in failure.message["failed_steps"][0]["error"]
    assert "warehouse__course_dim" in failure.subject
    assert failure.message["datasets"]["courses"]["rows_in"] == 25  # what the run did before it failed


@pytest.fixture
def sns_queue(monkeypatch):
    """A moto SNS topic with an SQS queue subscribed: (topic ARN, function returning the queue's messages)."""
    fake_aws_account(monkeypatch, REGION)
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="enrollment-notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="enrollment-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

        def received() -> list[dict]:
            messages = []
            while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                messages += [json.loads(m["Body"]) for m in batch]
                sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
                )
            return messages

        yield topic, received


def sns_records(messages: list[dict]) -> list[dict]:
    """The notifications as SNS delivered them: subject, kind attribute, message."""
    return [
        {
            "subject": m["Subject"],
            "kind": m["MessageAttributes"]["kind"]["Value"],
            "message": json.loads(m["Message"])["message"],
        }
        for m in messages
    ]


def test_sns_topic_receives_success_and_failed_checks_of_a_stored_run(success_run, sns_queue):
    settings, summary = success_run
    topic, received = sns_queue
    events = dagster_instance(settings).all_logs(summary.run_id)  # EventLogEntry objects, as the sensors read them
    send(SnsNotifier(topic_arn=topic), run_notifications(summary.run_id, all_assets_job.name, True, events))
    records = sns_records(received())
    (success,) = by_kind(records, RUN_SUCCESS)
    assert success["subject"].startswith(f"{all_assets_job.name} run {summary.run_id[:8]} succeeded")
    assert_success_message(success["message"])
    assert_near_duplicate_check(by_kind(records, CHECK_FAILURE))
    assert all(len(r["subject"]) <= 100 for r in records)


def test_sns_topic_receives_a_run_failure(failed_run, sns_queue):
    _, result = failed_run
    topic, received = sns_queue
    notify_run(SnsNotifier(topic_arn=topic), result)
    (failure,) = by_kind(sns_records(received()), RUN_FAILURE)
    assert "failed: warehouse__course_dim" in failure["subject"]
    assert REFUSAL in failure["message"]["failed_steps"][0]["error"]


def test_a_notifier_error_never_fails_the_cli_path(failed_run, sns_queue, caplog):
    _, result = failed_run
    notifications = notify_run(SnsNotifier(topic_arn="arn:aws:sns:eu-west-1:123456789012:no-such-topic"), result)
    assert notifications[0].kind == RUN_FAILURE
    assert "could not send the notifications" in caplog.text


def test_sns_subject_is_one_ascii_line_of_at_most_100_characters():
    subject = sns_subject("validated/enrollments r12_referentialintegrity_student_id\nfailed — " + "x" * 200)
    assert len(subject) == 100
    assert "\n" not in subject
    assert subject.isascii()


@contextmanager
def webhook_server():
    """A local HTTP server on 127.0.0.1 recording the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_webhook_from_the_environment_receives_the_failure(failed_run, tmp_path, monkeypatch):
    _, result = failed_run
    with webhook_server() as (url, received):
        monkeypatch.setenv(WEBHOOK_URL_VARIABLE, url)
        notify_run(local_notifier(tmp_path), result)  # the URL is a dg.EnvVar, resolved when sending
    assert [r["kind"] for r in received][:1] == [RUN_FAILURE]
    assert received[0]["text"] == received[0]["subject"]
    assert received[0]["message"]["failed_steps"][0]["step_key"] == "warehouse__course_dim"
    assert [r["kind"] for r in read_lines(tmp_path / "notifications.jsonl")] == [r["kind"] for r in received]


def test_an_unreachable_webhook_is_logged_and_the_line_still_written(tmp_path, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = LocalNotifier(path=str(tmp_path / "n.jsonl"), webhook_url=f"http://127.0.0.1:{port}/hook")
    notifier.notify(RUN_SUCCESS, "subject", {"run_id": "r1"})
    assert "not reached" in caplog.text
    assert read_lines(tmp_path / "n.jsonl")[0]["message"] == {"run_id": "r1"}


def run_status_context(instance: dg.DagsterInstance, run_id: str, event_type, notifier, name: str):
    event = instance.all_logs(run_id, of_type=event_type)[-1].dagster_event
    return dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"notifier": notifier},
    )


def test_run_status_sensors_send_through_the_notifier_resource(success_run, failed_run, tmp_path):
    on_success, on_failure = build_notification_sensors()
    notifier = LocalNotifier(path=str(tmp_path / "daemon.jsonl"))
    settings, summary = success_run
    instance = dagster_instance(settings)
    on_success(run_status_context(instance, summary.run_id, dg.DagsterEventType.RUN_SUCCESS, notifier, on_success.name))
    failed_instance, result = failed_run
    on_failure(
        run_status_context(failed_instance, result.run_id, dg.DagsterEventType.RUN_FAILURE, notifier, on_failure.name)
    )
    records = read_lines(tmp_path / "daemon.jsonl")
    (success,) = by_kind(records, RUN_SUCCESS)
    assert_success_message(success["message"])
    (failure,) = by_kind(records, RUN_FAILURE)
    assert failure["message"]["run_id"] == result.run_id
    assert failure["message"]["failed_steps"][0]["step_key"] == "warehouse__course_dim"
    assert_near_duplicate_check(
        [r for r in by_kind(records, CHECK_FAILURE) if r["message"]["run_id"] == summary.run_id]
    )
