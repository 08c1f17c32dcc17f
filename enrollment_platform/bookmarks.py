"""Which raw files have been processed, like Glue job bookmarks.

A file's identity is its content: path + size + SHA-256 (or the object's ETag on S3). A file whose size and
modification time match the ledger is not read at all; otherwise its checksum decides, so a touched file is not
processed twice and a changed one is processed again. The ledger advances only in the run's last step, after
the warehouse load has committed: a run that dies before it leaves the files pending, and the rerun converges.
"""

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from enrollment_platform.partitions import ingest_date
from enrollment_platform.resources.raw import RawFile

LEDGER = ("_state", "processed_raw_files.parquet")
BATCHES = "batches"


@dataclass(frozen=True)
class BatchFile:
    """A raw file in a run's batch, and where its staged copy is."""

    dataset: str
    relative: str
    size_bytes: int
    modified_ns: int
    identity: str
    ingest_date: str
    staged: str


def file_identity(raw_file: RawFile) -> str:
    """The ETag an object store gives, else the SHA-256 of the bytes."""
    etag = getattr(raw_file, "etag", "")
    if etag:
        return f"etag:{etag}"
    digest = hashlib.sha256()
    with Path(raw_file.path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def load_ledger(lake) -> dict[tuple[str, str], dict]:
    """Processed files by (dataset, relative path)."""
    path = Path(lake.path(*LEDGER))
    if not path.exists():
        return {}
    rows = duckdb.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    columns = ["dataset", "relative", "size_bytes", "modified_ns", "identity", "ingest_date", "batch", "run_id"]
    return {(r[0], r[1]): dict(zip(columns, r, strict=True)) for r in rows}


def pending(raw_file: RawFile, ledger: dict[tuple[str, str], dict]) -> str | None:
    """The file's identity when it still needs processing, else None."""
    entry = ledger.get((raw_file.dataset, raw_file.relative))
    if entry and entry["size_bytes"] == raw_file.size_bytes and entry["modified_ns"] == raw_file.modified_ns:
        return None
    identity = file_identity(raw_file)
    if entry and entry["identity"] == identity:
        return None
    return identity


def is_pending(raw_file: RawFile, ledger: dict[tuple[str, str], dict]) -> bool:
    """Whether the file still needs processing. A file the ledger does not know is, without reading it: only the
    raw step, which stages it, needs its identity (`pending`); hashing every new file to pick the batch's dates
    too read the whole delivery twice (1.1 s per pass at 10 M enrollments)."""
    return (raw_file.dataset, raw_file.relative) not in ledger or pending(raw_file, ledger) is not None


def pending_files(files: list[RawFile], ledger: dict[tuple[str, str], dict]) -> list[tuple[RawFile, str]]:
    """The files that still need processing, with their identities; files are hashed side by side (hashing and
    reading release the GIL: 1.1 s to 0.5 s for the 1.2 GB of a 10 M-enrollment delivery on 2 cores)."""
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        identities = list(pool.map(lambda raw_file: pending(raw_file, ledger), files))
    return [(raw_file, identity) for raw_file, identity in zip(files, identities, strict=True) if identity is not None]


def pending_dates(files: list[RawFile], ledger: dict[tuple[str, str], dict]) -> list[str]:
    """Ingestion dates that still have files to process, sorted."""
    return sorted({ingest_date(f.relative, f.modified_ns) for f in files if is_pending(f, ledger)})


def batch_manifest_path(lake, batch: str, dataset: str) -> str:
    return lake.path("staging", BATCHES, batch, f"{dataset}.json")


def write_batch(lake, batch: str, dataset: str, files: list[BatchFile]) -> None:
    with lake.atomic_write("staging", BATCHES, batch, f"{dataset}.json") as temporary:
        Path(temporary).write_text(json.dumps([asdict(f) for f in files], indent=1))


def read_batch(lake, batch: str, dataset: str) -> list[BatchFile]:
    path = Path(batch_manifest_path(lake, batch, dataset))
    if not path.exists():
        return []
    return [BatchFile(**entry) for entry in json.loads(path.read_text())]


def batch_content_id(lake, batch: str, dataset: str) -> str:
    """A short name for the exact files of a batch: a rerun of the same files (after a crash) reuses it, a run
    of the same dates with other files (or none) gets its own, so it never overwrites an earlier record."""
    files = sorted(f"{f.relative}|{f.identity}" for f in read_batch(lake, batch, dataset))
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def commit(lake, batch: str, datasets: list[str], run_id: str) -> int:
    """Record the batch's files as processed (one atomic rewrite of the ledger); return how many."""
    ledger = load_ledger(lake)
    committed = 0
    for dataset in datasets:
        for f in read_batch(lake, batch, dataset):
            ledger[(dataset, f.relative)] = {
                "dataset": dataset,
                "relative": f.relative,
                "size_bytes": f.size_bytes,
                "modified_ns": f.modified_ns,
                "identity": f.identity,
                "ingest_date": f.ingest_date,
                "batch": batch,
                "run_id": run_id,
            }
            committed += 1
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ledger (dataset VARCHAR, relative VARCHAR, size_bytes BIGINT, modified_ns BIGINT, "
        "identity VARCHAR, ingest_date VARCHAR, batch VARCHAR, run_id VARCHAR)"
    )
    rows = sorted(ledger.values(), key=lambda r: (r["dataset"], r["relative"]))
    if rows:
        con.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [list(r.values()) for r in rows])
    with lake.atomic_write(*LEDGER) as temporary:
        con.execute(f"COPY ledger TO '{temporary}' (FORMAT parquet)")
    con.close()
    return committed
