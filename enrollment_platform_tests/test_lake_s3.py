"""The lake's twins behind one interface: the local folder and the S3 lake (moto), whose local cache mirrors the
bucket so the in-process engine (DuckDB) reads plain files."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pytest
from botocore.stub import Stubber
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from enrollment_platform.resources import lake_s3 as lake_module
from enrollment_platform.resources.lake import Lake, LocalLake, link_or_copy
from enrollment_platform.resources.lake_s3 import LakeAccessError, S3Lake
from enrollment_platform.settings import SettingsError
from enrollment_platform_tests.conftest import fake_aws_account

BUCKET, PREFIX, REGION = "enrollment-lake", "lake", "eu-west-1"
CURATED = ("curated", "students", "students.parquet")


@pytest.fixture
def s3_client(monkeypatch):
    """A moto S3 account with the lake's bucket."""
    fake_aws_account(monkeypatch, REGION)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def s3_lake(tmp_path: Path, bucket: str = BUCKET) -> S3Lake:
    return S3Lake(s3=S3Resource(region_name=REGION), bucket=bucket, prefix=PREFIX, cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def lake(s3_client, tmp_path) -> S3Lake:
    return s3_lake(tmp_path)


@pytest.fixture(params=["local", "s3"])
def any_lake(request, tmp_path) -> Lake:
    """Each twin in turn."""
    if request.param == "local":
        return LocalLake(root=str(tmp_path / "lake"))
    request.getfixturevalue("s3_client")
    return s3_lake(tmp_path)


def write_parquet(lake: Lake, parts: tuple[str, ...], names: list[str]) -> None:
    """A Parquet file of one `name` column, written through the lake."""
    values = ", ".join(f"('{name}')" for name in names)
    with lake.atomic_write(*parts) as temporary:
        duckdb.execute(f"COPY (SELECT * FROM (VALUES {values}) AS t(name)) TO '{temporary}' (FORMAT parquet)")


def read_names(path: str) -> list[str]:
    return [row[0] for row in duckdb.execute("SELECT name FROM read_parquet(?) ORDER BY name", [path]).fetchall()]


def parquet_bytes(tmp_path: Path, names: list[str]) -> bytes:
    """What another writer puts into the bucket."""
    target = tmp_path / f"other-{len(list(tmp_path.iterdir()))}.parquet"
    values = ", ".join(f"('{name}')" for name in names)
    duckdb.execute(f"COPY (SELECT * FROM (VALUES {values}) AS t(name)) TO '{target}' (FORMAT parquet)")
    return target.read_bytes()


def key(*parts: str) -> str:
    return "/".join((PREFIX, *parts))


def test_both_twins_write_read_list_and_remove_the_same_way(any_lake):
    assert isinstance(any_lake, Lake)
    write_parquet(any_lake, CURATED, ["Ann", "Bob"])
    write_parquet(any_lake, ("curated", "students", "part", "extra.parquet"), ["Cy"])
    with any_lake.atomic_write("curated", "students", "notes.json") as temporary:
        Path(temporary).write_text("{}")

    assert read_names(any_lake.path(*CURATED)) == ["Ann", "Bob"]
    assert any_lake.exists(*CURATED) and any_lake.exists("curated", "students")
    listed = any_lake.list("curated")
    assert listed == sorted(listed)
    assert sorted(Path(p).name for p in listed) == ["extra.parquet", "students.parquet"]
    assert [Path(p).name for p in any_lake.list("curated", suffix=".json")] == ["notes.json"]
    assert any_lake.list("nothing", "here") == []

    any_lake.remove("curated", "students")
    assert not any_lake.exists(*CURATED)
    assert not any_lake.exists("curated", "students")
    assert any_lake.list("curated") == []


@pytest.mark.parametrize("links", [True, False], ids=["hard link", "copy"])
def test_a_file_taken_over_as_it_is_keeps_its_rows_when_the_source_is_written_again(any_lake, links, monkeypatch):
    """A first batch becomes the curated state by `link_or_copy`; writing the batch file again (a re-run) must not
    change the state, whether the two share the bytes (hard link) or not (no hard links on that file system)."""
    if not links:
        monkeypatch.setattr(os, "link", _no_hard_links)
    batch, state = ("staging", "redacted", "students", "b.parquet"), CURATED
    write_parquet(any_lake, batch, ["ada", "grace"])
    with any_lake.atomic_write(*state) as temporary:
        link_or_copy(any_lake.path(*batch), temporary)
    write_parquet(any_lake, batch, ["someone else"])
    assert read_names(any_lake.path(*state)) == ["ada", "grace"]
    assert read_names(any_lake.path(*batch)) == ["someone else"]


def _no_hard_links(source, target):
    raise OSError(1, "Operation not permitted")


def test_a_failed_write_leaves_nothing_behind(any_lake):
    with pytest.raises(RuntimeError), any_lake.atomic_write(*CURATED) as temporary:
        Path(temporary).write_bytes(b"half a file")
        raise RuntimeError("killed mid-write")
    assert not any_lake.exists(*CURATED)
    assert [p.name for p in Path(any_lake.path(*CURATED)).parent.iterdir()] == []


def test_atomic_write_uploads_first_and_caches_the_object(lake, s3_client):
    write_parquet(lake, CURATED, ["Ann"])
    head = s3_client.head_object(Bucket=BUCKET, Key=key(*CURATED))
    local = Path(lake.path(*CURATED))
    assert local.parent.is_relative_to(Path(lake.cache_dir))
    assert local.stat().st_size == head["ContentLength"]
    assert local.stat().st_mtime_ns == int(head["LastModified"].timestamp() * 1e9)
    assert read_names(str(local)) == ["Ann"]


def test_path_fetches_the_object_another_writer_replaced(lake, s3_client, tmp_path):
    write_parquet(lake, CURATED, ["Ann"])
    assert read_names(lake.path(*CURATED)) == ["Ann"]
    s3_client.put_object(Bucket=BUCKET, Key=key(*CURATED), Body=parquet_bytes(tmp_path, ["Amy"]))  # same size
    assert read_names(lake.path(*CURATED)) == ["Amy"]
    s3_client.put_object(Bucket=BUCKET, Key=key(*CURATED), Body=parquet_bytes(tmp_path, ["Amy", "Bob", "Cy"]))
    assert read_names(lake.path(*CURATED)) == ["Amy", "Bob", "Cy"]


def test_path_forgets_a_copy_whose_object_another_writer_deleted(lake, s3_client):
    write_parquet(lake, CURATED, ["Ann"])
    local = Path(lake.path(*CURATED))
    s3_client.delete_object(Bucket=BUCKET, Key=key(*CURATED))
    assert lake.path(*CURATED) == str(local)
    assert not local.exists()
    assert not lake.exists(*CURATED)


def test_path_of_a_new_object_is_a_local_path_in_an_existing_folder(lake):
    path = Path(lake.path("quarantine", "students", "batch=2024-06-01", "rows.parquet"))
    assert path.parent.is_dir() and not path.exists()


def test_list_syncs_objects_other_writers_put_with_their_s3_times(lake, s3_client, tmp_path, monkeypatch):
    monkeypatch.setattr(lake_module, "LIST_PAGE_SIZE", 2)  # five objects: three pages
    names = ["run_id=a/r.parquet", "run_id=b/r.parquet", "run_id=c/deep/r.parquet"]
    for index, name in enumerate(names):
        body = parquet_bytes(tmp_path, [f"n{index}"])
        s3_client.put_object(Bucket=BUCKET, Key=key("dq_results", *name.split("/")), Body=body)
    s3_client.put_object(Bucket=BUCKET, Key=key("dq_results", ".hidden.parquet"), Body=b"x")
    s3_client.put_object(Bucket=BUCKET, Key=key("dq_results", "readme.json"), Body=b"{}")

    listed = lake.list("dq_results")
    assert listed == sorted(str(Path(lake.cache_dir, "dq_results", *n.split("/"))) for n in names)
    for index, path in enumerate(sorted(listed)):
        head = s3_client.head_object(Bucket=BUCKET, Key=key(*Path(path).relative_to(lake.cache_dir).parts))
        assert Path(path).stat().st_mtime_ns == int(head["LastModified"].timestamp() * 1e9)
        assert read_names(path) == [f"n{index}"]
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [listed]).fetchone()[0] == 3


def test_list_does_not_download_an_unchanged_object_again(lake, s3_client, monkeypatch):
    write_parquet(lake, CURATED, ["Ann"])
    assert lake.list("curated")
    downloads = []
    client = lake._s3()
    monkeypatch.setattr(client, "download_file", lambda *args, **kwargs: downloads.append(args))
    assert lake.list("curated") == [lake.path(*CURATED)]
    assert downloads == []


def test_remove_deletes_the_objects_below_and_their_cached_copies(lake, s3_client):
    write_parquet(lake, ("staging", "deduped", "students", "2024-06-01.parquet"), ["Ann"])
    write_parquet(lake, ("staging", "deduped", "courses", "2024-06-01.parquet"), ["C1"])
    lake.remove("staging", "deduped", "students")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]]
    assert keys == [key("staging", "deduped", "courses", "2024-06-01.parquet")]
    assert not Path(lake.cache_dir, "staging", "deduped", "students").exists()
    assert Path(lake.cache_dir, "staging", "deduped", "courses", "2024-06-01.parquet").exists()


def test_uri_names_the_object_for_outside_engines(lake, tmp_path):
    assert lake.uri(*CURATED) == f"s3://{BUCKET}/{PREFIX}/curated/students/students.parquet"
    assert lake.uri() == f"s3://{BUCKET}/{PREFIX}"
    local = LocalLake(root=str(tmp_path / "lake"))
    assert local.uri(*CURATED) == str((tmp_path / "lake").joinpath(*CURATED))


def test_a_missing_bucket_is_a_settings_error_naming_it(s3_client, tmp_path):
    lake = s3_lake(tmp_path, bucket="no-such-bucket")
    with pytest.raises(SettingsError, match=r"s3://no-such-bucket/lake.*does not exist"):
        lake.path(*CURATED)
    with pytest.raises(LakeAccessError, match="no-such-bucket"), lake.atomic_write(*CURATED) as temporary:
        Path(temporary).write_bytes(b"x")


def test_access_denied_is_a_settings_error_naming_bucket_and_prefix(lake):
    client = lake._s3()
    with Stubber(client) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(
            LakeAccessError, match=r"access denied \(403\) to bucket 'enrollment-lake' under prefix 'lake'"
        ):
            lake.exists(*CURATED)


def test_the_s3_lake_serves_an_asset_typed_with_the_interface(lake, tmp_path):
    """An asset asking for a `Lake` gets the S3 twin; what it writes is in the bucket."""

    @dg.asset
    def names(lake: Lake) -> dg.MaterializeResult:
        write_parquet(lake, CURATED, ["Ann", "Bob"])
        return dg.MaterializeResult(metadata={"rows": len(read_names(lake.path(*CURATED)))})

    result = dg.materialize([names], resources={"lake": lake})
    assert result.success
    other_cache = s3_lake(tmp_path / "second_machine")
    assert read_names(other_cache.path(*CURATED)) == ["Ann", "Bob"]
    assert Path(other_cache.path(*CURATED)).is_relative_to(tmp_path / "second_machine")
