"""`enrollment-platform glue-package`: the wheel the Glue jobs install carries the package and the data it loads,
every entry point in glue_scripts/ is packaged and has its Glue job in infra/catalog.yaml, the manifest's keys match
the stack's ProjectWheelKey, and --upload puts every artifact at its manifest key (moto)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws
from typer.testing import CliRunner

from enrollment_platform import packaging
from enrollment_platform.cli import app
from enrollment_platform.packaging import MANIFEST, S3Target, upload_glue_package, wheel_file_name
from enrollment_platform.transforms.spark.glue import STEPS
from enrollment_platform_tests.conftest import REPO

GLUE_SCRIPTS = REPO / "glue_scripts"
PACKAGE = REPO / "enrollment_platform"
REGION = "us-east-1"


def catalog_template() -> dict:
    decoded, errors = decode(str(REPO / "infra" / "catalog.yaml"))
    assert not errors, errors
    return decoded


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> tuple[Path, dict]:
    """`enrollment-platform glue-package --out <tmp>`, built once: (output folder, manifest)."""
    out = tmp_path_factory.mktemp("glue_package")
    result = CliRunner().invoke(app, ["glue-package", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def wheel_names(package) -> set[str]:
    out, manifest = package
    with zipfile.ZipFile(out / manifest["files"][manifest["wheel"]]) as wheel:
        return set(wheel.namelist())


def test_the_wheel_has_the_package_and_no_tests(wheel_names):
    modules = {str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= wheel_names
    assert "enrollment_platform/transforms/spark/glue.py" in wheel_names
    assert not [name for name in wheel_names if name.startswith("enrollment_platform_tests/")]


def test_the_wheel_has_the_data_files_the_jobs_load(wheel_names):
    data = [*PACKAGE.glob("config/*.yaml"), *PACKAGE.glob("config/rules/*.dqdl"), *PACKAGE.glob("quality/dqdl/*.yaml")]
    assert {"datasets.yaml", "pii_policy.yaml", "enrollments.dqdl", "rule_types.yaml"} <= {p.name for p in data}
    assert {str(p.relative_to(REPO)) for p in data} <= wheel_names


def test_every_glue_script_is_packaged_and_listed(package):
    out, manifest = package
    scripts = sorted(GLUE_SCRIPTS.glob("*.py"))
    assert manifest["scripts"] == {p.stem: f"glue_scripts/{p.name}" for p in scripts}
    for script in scripts:
        assert (out / "glue_scripts" / script.name).read_bytes() == script.read_bytes()
    assert set(manifest["files"]) == {manifest["wheel"], *manifest["scripts"].values()}


def test_the_manifest_names_the_keys_and_the_job_arguments(package):
    out, manifest = package
    wheel = wheel_file_name()
    assert manifest["wheel"] == f"wheels/{wheel}" and (out / "wheels" / wheel).is_file()
    assert (manifest["bucket"], manifest["prefix"], manifest["manifest"]) == (None, "", MANIFEST)
    assert set(manifest["jobs"]) == set(STEPS)
    for step, job in manifest["jobs"].items():
        assert job["script_location"] == f"s3://<bucket>/glue_scripts/{step}.py"
        assert job["arguments"] == {"--additional-python-modules": f"s3://<bucket>/wheels/{wheel}"}


def test_the_wheel_key_is_the_stacks_project_wheel_key(package):
    _, manifest = package
    assert catalog_template()["Parameters"]["ProjectWheelKey"]["Default"] == manifest["wheel"]


def test_every_glue_job_runs_a_glue_script_and_every_script_has_a_job():
    jobs = [r["Properties"] for r in catalog_template()["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    locations = {job["Command"]["ScriptLocation"]["Fn::Sub"][0] for job in jobs}
    assert len(locations) == len(jobs)
    assert all(location.startswith("s3://${Bucket}/glue_scripts/") for location in locations)
    scripts = {location.removeprefix("s3://${Bucket}/") for location in locations}
    assert scripts == {f"glue_scripts/{p.name}" for p in GLUE_SCRIPTS.glob("*.py")}
    assert all((REPO / script).is_file() for script in scripts)
    assert {Path(script).stem for script in scripts} == set(STEPS)


def fake_aws(monkeypatch) -> None:
    """Fake credentials and region for moto; no profile or endpoint of the caller's."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def test_upload_puts_every_artifact_at_its_manifest_key(package, monkeypatch, tmp_path):
    fake_aws(monkeypatch)
    built = package[1]
    out = Path(shutil.copytree(package[0], tmp_path / "glue"))  # the upload rewrites the manifest for its bucket
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artifacts")
        manifest = upload_glue_package(out, S3Target.parse("s3://artifacts/release/"), client=s3)
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]}
        bodies = {key: s3.get_object(Bucket="artifacts", Key=key)["Body"].read() for key in stored}
    wheel = f"release/wheels/{wheel_file_name()}"
    assert manifest["wheel"] == wheel and manifest["manifest"] == f"release/{MANIFEST}"
    assert stored == {*manifest["files"], manifest["manifest"]}
    assert len(manifest["files"]) == len(built["files"])
    for key, relative in manifest["files"].items():
        assert bodies[key] == (out / relative).read_bytes(), key
    assert json.loads(bodies[manifest["manifest"]]) == manifest
    for step, job in manifest["jobs"].items():
        assert job["script_location"] == f"s3://artifacts/release/glue_scripts/{step}.py"
        assert job["arguments"]["--additional-python-modules"] == f"s3://artifacts/{wheel}"


def test_the_cli_uploads_and_names_the_stack_parameter(package, monkeypatch, tmp_path):
    """`glue-package --upload` end to end, with the wheel build replaced by a copy of the one built above."""
    built_out, built = package
    wheel = built_out / built["files"][built["wheel"]]
    monkeypatch.setattr(packaging, "build_wheel", lambda root, wheels: Path(shutil.copy2(wheel, wheels)))
    fake_aws(monkeypatch)
    out = tmp_path / "glue"
    (out / "wheels").mkdir(parents=True)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artifacts")
        result = CliRunner().invoke(app, ["glue-package", "--out", str(out), "--upload", "s3://artifacts"])
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]}
    assert result.exit_code == 0, result.output
    assert f"ProjectWheelKey={built['wheel']}" in result.output
    assert stored == {*built["files"], MANIFEST}


def test_the_cli_refuses_an_upload_target_that_is_not_s3(tmp_path):
    result = CliRunner().invoke(app, ["glue-package", "--out", str(tmp_path / "glue"), "--upload", "bucket/prefix"])
    assert result.exit_code == 1
    assert "s3://BUCKET" in result.output
    assert not (tmp_path / "glue").exists()  # refused before building anything
