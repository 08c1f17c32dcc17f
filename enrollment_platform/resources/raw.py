"""The raw layer: where source systems drop files, organised as <raw>/<dataset>/**/<file>."""

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from enrollment_platform.config import Catalog
from enrollment_platform.transforms.read_raw import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class RawFile:
    dataset: str
    path: Path  # a local path the engine can read
    relative: str  # path inside the raw layer, as shown to people and kept as lineage
    size_bytes: int
    modified_ns: int
    etag: str = ""  # the object store's content tag (S3 ETag); empty for local files


@dataclass(frozen=True)
class RawInventory:
    files: dict[str, list[RawFile]]
    ignored: list[str]  # files in dataset folders with an unsupported extension
    unknown_folders: list[str]  # top-level folders that are not a dataset


class RawLayer(dg.ConfigurableResource):
    """Where source systems drop files: list them per dataset, and give the engine a local copy to read."""

    @abstractmethod
    def inventory(self, catalog: Catalog) -> RawInventory:
        """Every file of every dataset folder, and what was passed over."""

    def has_data(self, catalog: Catalog) -> bool:
        return any(self.inventory(catalog).files.values())

    def localize(self, raw_file: RawFile) -> Path:
        """A local path holding the file's bytes."""
        return Path(raw_file.path)

    @abstractmethod
    def location(self, *parts: str) -> str:
        """Where an engine outside this process finds a folder of the layer: a local path or `s3://bucket/…`."""


class LocalRawLayer(RawLayer):
    """A raw layer in a local folder (the original system's folder names work as-is)."""

    root: str

    def location(self, *parts: str) -> str:
        return str(Path(self.root, *parts).absolute())

    def inventory(self, catalog: Catalog) -> RawInventory:
        root = Path(self.root)
        files: dict[str, list[RawFile]] = {name: [] for name in catalog.datasets}
        ignored, unknown = [], []
        if not root.is_dir():
            return RawInventory(files, ignored, unknown)
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            dataset = catalog.dataset_for_folder(folder.name)
            if dataset is None:
                unknown.append(folder.name)
                continue
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                relative = path.relative_to(root).as_posix()
                if any(part.startswith((".", "_")) for part in path.relative_to(folder).parts):
                    continue
                if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    ignored.append(relative)
                    continue
                stat = path.stat()
                files[dataset].append(RawFile(dataset, path, relative, stat.st_size, stat.st_mtime_ns))
        return RawInventory(files, ignored, unknown)
