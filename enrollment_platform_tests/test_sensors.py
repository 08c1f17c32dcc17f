"""The raw-files sensor over both raw-layer twins (a local folder, an S3 bucket in moto) and the S3 twin itself."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from enrollment_platform.config import load_catalog
from enrollment_platform.definitions import all_assets_job, build_definitions
from enrollment_platform.partitions import range_tags
from enrollment_platform.resources.raw import LocalRawLayer
from enrollment_platform.resources.raw_s3 import S3RawLayer
from enrollment_platform.sensors import TRIGGER_TAG, build_raw_files_sensor
from enrollment_platform_tests.conftest import fake_aws_account, local_settings

BUCKET, PREFIX, REGION = "enrollment-raw", "landing", "eu-west-1"
STUDENTS = "students/ingest_date=2024-06-01/students.csv"
COURSES = "course/ingest_date=2024-06-03/courses.csv"
CSV = "student_id,fname\n1,Ann\n"


def tick(raw_layer, cursor: str | None = None):
    """One evaluation of the sensor: (run requests, new cursor)."""
    sensor = build_raw_files_sensor(all_assets_job)
    with dg.build_sensor_context(resources={"raw_layer": raw_layer}, cursor=cursor) as context:
        result = sensor.evaluate_tick(context)
    return result.run_requests, result.cursor


def write(root: Path, relative: str, text: str, mtime: int = 1_717_200_000) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_local_new_file_then_nothing_then_changed_file(tmp_path):
    layer = LocalRawLayer(root=str(tmp_path))
    write(tmp_path, STUDENTS, CSV)
    write(tmp_path, "students/_manifest.json", "{}")  # hidden: never a reason to run
    write(tmp_path, "students/readme.txt", "notes")  # unsupported: never a reason to run

    requests, cursor = tick(layer)
    assert len(requests) == 1
    assert requests[0].tags[TRIGGER_TAG] == "raw_files_sensor"
    assert requests[0].tags.items() >= range_tags("2024-06-01", "2024-06-01").items()

    again, same_cursor = tick(layer, cursor)
    assert again == []
    assert same_cursor == cursor

    write(tmp_path, STUDENTS, CSV + "2,Bob\n", mtime=1_717_300_000)
    write(tmp_path, COURSES, "c_id\nC1\n")
    changed, _ = tick(layer, cursor)
    assert len(changed) == 1
    assert changed[0].run_key != requests[0].run_key
    assert changed[0].tags.items() >= range_tags("2024-06-01", "2024-06-03").items()


def test_local_duplicate_tick_asks_for_the_same_run_key(tmp_path):
    layer = LocalRawLayer(root=str(tmp_path))
    write(tmp_path, STUDENTS, CSV)
    first, _ = tick(layer)
    second, _ = tick(layer)  # the cursor was lost: Dagster drops a run request whose run key already ran
    assert first[0].run_key == second[0].run_key


def test_local_touched_file_with_same_size_counts_as_changed(tmp_path):
    layer = LocalRawLayer(root=str(tmp_path))
    write(tmp_path, STUDENTS, CSV)
    _, cursor = tick(layer)
    write(tmp_path, STUDENTS, CSV.replace("Ann", "Amy"), mtime=1_717_200_500)
    requests, _ = tick(layer, cursor)
    assert len(requests) == 1


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A moto S3 bucket and an S3 raw layer over `s3://BUCKET/PREFIX/`, caching into tmp_path."""
    fake_aws_account(monkeypatch, REGION)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        layer = S3RawLayer(
            s3=S3Resource(region_name=REGION), bucket=BUCKET, prefix=PREFIX, cache_dir=str(tmp_path / "cache")
        )
        yield client, layer


def put(client, relative: str, text: str) -> None:
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{relative}", Body=text.encode())


def test_s3_new_object_then_nothing_then_changed_object(s3):
    client, layer = s3
    put(client, STUDENTS, CSV)
    requests, cursor = tick(layer)
    assert len(requests) == 1

    assert tick(layer, cursor)[0] == []
    put(client, STUDENTS, CSV)  # the same bytes again: same ETag and size, nothing new
    assert tick(layer, cursor)[0] == []

    put(client, STUDENTS, CSV.replace("Ann", "Amy"))  # same size, new ETag
    changed, _ = tick(layer, cursor)
    assert len(changed) == 1
    assert changed[0].run_key != requests[0].run_key


def test_s3_inventory_matches_the_local_layout_rules(s3):
    client, layer = s3
    put(client, STUDENTS, CSV)
    put(client, COURSES, "c_id\nC1\n")
    put(client, "students/notes.txt", "not a table")
    put(client, "students/_tmp/partial.csv", "hidden")
    put(client, "marketing/leads.csv", "a\n1\n")
    client.put_object(Bucket=BUCKET, Key="elsewhere/students/x.csv", Body=b"a\n1\n")  # outside the prefix

    inventory = layer.inventory(load_catalog())
    assert [f.relative for f in inventory.files["students"]] == [STUDENTS]
    assert [f.relative for f in inventory.files["courses"]] == [COURSES]
    assert inventory.ignored == ["students/notes.txt"]
    assert inventory.unknown_folders == ["marketing"]
    student = inventory.files["students"][0]
    assert student.size_bytes == len(CSV)
    head = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{STUDENTS}")
    assert student.etag and student.etag == head["ETag"].strip('"')
    assert layer.has_data(load_catalog())


def test_s3_empty_prefix_has_no_data(s3):
    client, layer = s3
    put(client, "marketing/leads.csv", "a\n1\n")
    assert not layer.has_data(load_catalog())


def test_s3_localize_downloads_once(s3):
    client, layer = s3
    put(client, STUDENTS, CSV)
    raw_file = layer.inventory(load_catalog()).files["students"][0]
    local = layer.localize(raw_file)
    assert local.read_text() == CSV
    assert local.stat().st_mtime_ns == raw_file.modified_ns
    client.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{STUDENTS}")
    assert layer.localize(raw_file) == local  # cached: no second download (the object is gone)


def test_definitions_register_the_sensors(tmp_path):
    defs = build_definitions(local_settings(tmp_path, tmp_path / "raw"))
    raw_sensor = defs.resolve_sensor_def("raw_files_sensor")
    assert raw_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert raw_sensor.job_name == all_assets_job.name
    for name in ("notify_run_success", "notify_run_failure"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    assert "notifier" in defs.resources
