"""The Glue jobs' artifacts (`enrollment-platform glue-package`): the project wheel, the `glue_scripts/` entry
points and `glue_manifest.json`, which names their S3 keys and the arguments each Glue job installs them with.

The output folder mirrors the artifacts bucket, where infra/catalog.yaml expects them:

    <out>/wheels/enrollment_platform-<version>-py3-none-any.whl   the ProjectWheelKey parameter
    <out>/glue_scripts/<step>.py                                    each job's ScriptLocation
    <out>/glue_manifest.json

The wheel carries every module and data file the scripts load (config/*.yaml, config/rules/*.dqdl, ...), so the jobs
need no `--extra-py-files`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WHEELS = "wheels"
SCRIPTS = "glue_scripts"
MANIFEST = "glue_manifest.json"
BUCKET_PLACEHOLDER = "<bucket>"  # in a manifest built for no bucket in particular
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg", "setup.py")


class PackagingError(RuntimeError):
    """The artifacts could not be built or uploaded."""


@dataclass(frozen=True)
class S3Target:
    """Where the artifacts go: a bucket and a key prefix ("" or ending in "/")."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Target:
        """`s3://bucket[/prefix]`."""
        if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise PackagingError(f"--upload wants s3://BUCKET or s3://BUCKET/PREFIX, not {uri!r}")
        bucket, _, prefix = uri[5:].partition("/")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def key(self, relative: str) -> str:
        return f"{self.prefix}{relative}"

    def uri(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key(relative)}"


def read_pyproject(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def wheel_file_name(root: Path = PROJECT_ROOT) -> str:
    """The file name of the pure-Python wheel the build gives for the version in pyproject.toml."""
    project = read_pyproject(root)["project"]
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    return f"{name}-{project['version']}-py3-none-any.whl"


def _package_dirs(root: Path) -> list[Path]:
    """The top-level packages `[tool.setuptools.packages.find] include` selects."""
    patterns = read_pyproject(root).get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    include = patterns.get("include", ["*"])
    return [
        path
        for path in sorted(root.iterdir())
        if (path / "__init__.py").is_file() and any(fnmatch(path.name, pattern) for pattern in include)
    ]


def stage_source(root: Path, target: Path) -> Path:
    """Copy what the build reads (pyproject.toml, README, the packages) into `target`.

    setuptools builds in the source tree (`build/`, `*.egg-info`): a clean copy keeps stale files of an earlier build
    out of the wheel and concurrent builds out of each other's way, and skips caches and local data.
    """
    target.mkdir(parents=True)
    for name in BUILD_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, target / name)
    for package in _package_dirs(root):
        shutil.copytree(package, target / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def build_wheel(root: Path, wheels_dir: Path) -> Path:
    """`python -m pip wheel --no-deps` of the project into `wheels_dir`; the wheel's path."""
    with tempfile.TemporaryDirectory(prefix="enrollment-wheel-") as tmp:
        source = stage_source(root, Path(tmp) / "source")
        built = Path(tmp) / "wheels"
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-input", "-q", "-w", str(built), "."]
        done = subprocess.run(command, cwd=source, capture_output=True, text=True, check=False)
        wheels = sorted(built.glob("*.whl"))
        if done.returncode or len(wheels) != 1:
            raise PackagingError(f"{' '.join(command[2:])} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        wheels_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], wheels_dir / wheels[0].name))


def copy_scripts(root: Path, target: Path) -> list[Path]:
    """`glue_scripts/*.py` into `target` (emptied first, so a removed script does not linger)."""
    scripts = sorted((root / SCRIPTS).glob("*.py"))
    if not scripts:
        raise PackagingError(f"no Glue scripts in {root / SCRIPTS}")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    return [Path(shutil.copy2(script, target / script.name)) for script in scripts]


def render_manifest(version: str, wheel: str, scripts: list[str], target: S3Target | None) -> dict[str, Any]:
    """The manifest of a wheel file name and script file names, with the keys and URIs in `target` (or
    `s3://<bucket>/...` when there is none yet)."""
    where = target or S3Target(BUCKET_PLACEHOLDER)
    files = {where.key(f"{WHEELS}/{wheel}"): f"{WHEELS}/{wheel}"}  # S3 key -> path under the output folder
    files |= {where.key(f"{SCRIPTS}/{name}"): f"{SCRIPTS}/{name}" for name in scripts}
    script_keys = {Path(name).stem: where.key(f"{SCRIPTS}/{name}") for name in scripts}
    arguments = {"--additional-python-modules": where.uri(f"{WHEELS}/{wheel}")}
    return {
        "version": version,
        "bucket": target.bucket if target else None,
        "prefix": where.prefix,
        "wheel": where.key(f"{WHEELS}/{wheel}"),
        "scripts": script_keys,
        "manifest": where.key(MANIFEST),
        "jobs": {
            step: {"script_location": f"s3://{where.bucket}/{key}", "arguments": dict(arguments)}
            for step, key in script_keys.items()
        },
        "files": files,
    }


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        raise PackagingError(f"{path} not found: build the package first")
    return json.loads(path.read_text(encoding="utf-8"))


def build_glue_package(out: Path, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Build the wheel, copy the scripts and write the manifest (for no bucket yet) into `out`; the manifest."""
    wheel = build_wheel(root, out / WHEELS)
    scripts = copy_scripts(root, out / SCRIPTS)
    version = read_pyproject(root)["project"]["version"]
    manifest = render_manifest(version, wheel.name, [s.name for s in scripts], None)
    write_manifest(out, manifest)
    return manifest


def upload_glue_package(out: Path, target: S3Target, client: Any = None) -> dict[str, Any]:
    """Put the built artifacts and the manifest (rewritten for `target`) at the manifest's keys; the manifest."""
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    built = read_manifest(out)
    scripts = [Path(relative).name for relative in built["files"].values() if relative.startswith(f"{SCRIPTS}/")]
    manifest = render_manifest(built["version"], Path(built["wheel"]).name, scripts, target)
    manifest_path = write_manifest(out, manifest)
    client = client or boto3.client("s3")
    uploads = {key: out / relative for key, relative in manifest["files"].items()}
    uploads[manifest["manifest"]] = manifest_path
    try:
        for key, path in uploads.items():
            client.upload_file(str(path), target.bucket, key)
    except (BotoCoreError, ClientError, S3UploadFailedError) as error:
        raise PackagingError(f"upload to s3://{target.bucket}/{target.prefix} failed: {error}") from error
    return manifest
