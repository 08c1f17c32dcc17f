"""The raw layer in S3: the AWS twin of `LocalRawLayer`, over `s3://<bucket>/<prefix>/<dataset>/**/<file>`.

Objects are listed with dagster-aws (`get_objects` through an `S3Resource` client) and identified by ETag and
size. The engine reads local files, so `localize` downloads an object into a local cache folder, mirroring its
key, with the object's LastModified as the file's modification time (an unchanged object is not fetched again).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from dagster_aws.s3 import S3Resource
from dagster_aws.s3.sensor import get_objects

from enrollment_platform.config import Catalog
from enrollment_platform.resources.raw import RawFile, RawInventory, RawLayer
from enrollment_platform.transforms.read_raw import SUPPORTED_SUFFIXES

_HIDDEN = (".", "_")


def _modified_ns(obj: dict) -> int:
    return int(obj["LastModified"].timestamp() * 1_000_000_000)


class S3RawLayer(RawLayer):
    """A raw layer under `s3://bucket/prefix/`; `cache_dir` is the local folder `localize` downloads into."""

    s3: S3Resource
    bucket: str
    prefix: str = ""
    cache_dir: str

    def location(self, *parts: str) -> str:
        return "s3://" + "/".join(p.strip("/") for p in (self.bucket, self.prefix, *parts) if p.strip("/"))

    def inventory(self, catalog: Catalog) -> RawInventory:
        files: dict[str, list[RawFile]] = {name: [] for name in catalog.datasets}
        ignored: list[str] = []
        unknown: set[str] = set()
        for obj in sorted(self._objects(), key=lambda o: o["Key"]):
            relative = self._relative(obj["Key"])
            parts = PurePosixPath(relative).parts
            if relative.endswith("/") or len(parts) < 2 or parts[0].startswith(_HIDDEN):
                continue  # folder markers, files beside the dataset folders, hidden folders
            dataset = catalog.dataset_for_folder(parts[0])
            if dataset is None:
                unknown.add(parts[0])
            elif any(p.startswith(_HIDDEN) for p in parts[1:]):
                continue
            elif ".." in parts or PurePosixPath(relative).suffix.lower() not in SUPPORTED_SUFFIXES:
                ignored.append(relative)
            else:
                files[dataset].append(self._raw_file(dataset, relative, obj))
        return RawInventory(files, ignored, sorted(unknown))

    def localize(self, raw_file: RawFile) -> Path:
        """A local copy of the object (downloaded unless the cached copy has its size and LastModified)."""
        target = Path(raw_file.path)
        if target.is_file():
            stat = target.stat()
            if stat.st_size == raw_file.size_bytes and stat.st_mtime_ns == raw_file.modified_ns:
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.download")
        self.s3.get_client().download_file(self.bucket, self._key(raw_file.relative), str(temporary))
        os.utime(temporary, ns=(raw_file.modified_ns, raw_file.modified_ns))
        os.replace(temporary, target)
        return target

    def _objects(self) -> list[dict]:
        prefix = f"{self.prefix.strip('/')}/" if self.prefix.strip("/") else ""
        return list(get_objects(self.bucket, prefix=prefix, client=self.s3.get_client()))

    def _relative(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return key[len(prefix) :].lstrip("/") if prefix else key

    def _key(self, relative: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{relative}" if prefix else relative

    def _raw_file(self, dataset: str, relative: str, obj: dict) -> RawFile:
        local = Path(self.cache_dir, self.bucket, *PurePosixPath(relative).parts)
        etag = obj.get("ETag", "").strip('"')
        return RawFile(dataset, local, relative, int(obj["Size"]), _modified_ns(obj), etag=etag)
