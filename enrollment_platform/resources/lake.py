"""The lake: staging, curated, quarantine and dq_results zones of Parquet files. One interface, two twins.

- `LocalLake`: a local folder. Writes are atomic (a temporary name, then a rename).
- `S3Lake` (module `lake_s3`, loaded with the AWS twins only): `s3://<bucket>/<prefix>/` is the truth and a local
  cache folder mirrors it, because the in-process engine reads local files only. `path` and `list` fetch what is new
  or changed in S3 (by ETag and size), `atomic_write` uploads first and only then puts the file in the cache,
  `remove` deletes in S3 and in the cache.

Every method takes the object's location as path parts below the lake root: `lake.path("curated", "students",
"students.parquet")`. `uri` gives the location for engines outside this process (Glue, Athena, Redshift COPY).
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg


class Lake(dg.ConfigurableResource):
    """Where the layers keep their files; every path it returns is a local file the engine can read."""

    @abstractmethod
    def path(self, *parts: str) -> str:
        """A local path holding the object's current bytes (when it exists), its folder created."""

    @abstractmethod
    def exists(self, *parts: str) -> bool:
        """Whether the object, or a folder of objects, exists."""

    @abstractmethod
    def list(self, *parts: str, suffix: str = ".parquet") -> list[str]:
        """Sorted local paths of every object below the folder whose name ends with `suffix` (hidden ones left out)."""

    @abstractmethod
    def atomic_write(self, *parts: str):
        """Context manager yielding a local temporary path; on success the file appears whole under its name."""

    @abstractmethod
    def remove(self, *parts: str) -> None:
        """Delete the object, or the folder and everything below it."""

    @abstractmethod
    def uri(self, *parts: str) -> str:
        """Where an engine outside this process finds the object (a local path, or `s3://…`)."""


class LocalLake(Lake):
    """A lake in a local folder. Writes are atomic: a file appears whole under its name or not at all."""

    root: str

    def path(self, *parts: str) -> str:
        """The location of a lake object, creating its folder."""
        target = Path(self.root, *parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return str(target)

    def exists(self, *parts: str) -> bool:
        return Path(self.root, *parts).exists()

    def list(self, *parts: str, suffix: str = ".parquet") -> list[str]:
        folder = Path(self.root, *parts)
        if not folder.is_dir():
            return []
        return sorted(str(p) for p in folder.rglob(f"*{suffix}") if not p.name.startswith("."))

    @contextmanager
    def atomic_write(self, *parts: str) -> Iterator[str]:
        """Yield a temporary path beside the target; on success rename it into place, else remove it."""
        final = Path(self.path(*parts))
        with temporary_beside(final) as temporary:
            yield str(temporary)
            os.replace(temporary, final)

    def remove(self, *parts: str) -> None:
        remove_local(Path(self.root, *parts))

    def uri(self, *parts: str) -> str:
        return str(Path(self.root, *parts).absolute())


@contextmanager
def temporary_beside(final: Path) -> Iterator[Path]:
    """A temporary name beside `final`, removed unless the caller moved it; clears those of killed writers."""
    for stale in final.parent.glob(f".{final.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def link_or_copy(source: str, target: str) -> None:
    """`target` made to hold `source`'s bytes: a hard link where the file system allows (instant, and safe
    because lake files are never changed in place: every write lands as a new file), else a copy."""
    try:
        os.link(source, target)
    except OSError:  # another device, or a file system without hard links
        shutil.copyfile(source, target)


def remove_local(target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
