"""The lake: staging, curated, quarantine and dq_results zones of Parquet files."""

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import dagster as dg


class LocalLake(dg.ConfigurableResource):
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
    def atomic_write(self, *parts: str):
        """Yield a temporary path beside the target; on success rename it into place, else remove it."""
        final = Path(self.path(*parts))
        for stale in final.parent.glob(f".{final.name}.*.tmp"):  # left by a writer that was killed
            stale.unlink(missing_ok=True)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        try:
            yield str(temporary)
            os.replace(temporary, final)
        finally:
            if temporary.exists():
                temporary.unlink()

    def remove(self, *parts: str) -> None:
        target = Path(self.root, *parts)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
