"""The audit log: for every pipeline run, who ran it, what it read and wrote, and which grants it changed.

One Parquet file per run, `<lake>/_audit/<run id>.parquet`, written once and never rewritten (a retried step finds
it and leaves it), one row per entry:

- `run_id`, `job`, `batch`, `recorded_at`: the run, its job, its ingestion dates, when the record was written (UTC);
- `actor`, `actor_source`: who ran it: $ENROLLMENT_ACTOR, else the run tag `enrollment/actor`, else the OS user;
- `host`: the machine the run executed on;
- `kind`: `read` (a raw file of the batch, an asset the run's assets depend on), `write` (an asset materialized,
  a lake path it reported), `grant` / `revoke` (an access-policy change);
- `object`, `detail`: what was read, written or changed, and how (asset, size, target).

In `aws`, object-level reads and writes of the data buckets are also in the CloudTrail trail of
infra/governance.yaml (S3 data events), whoever made them.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from enrollment_platform import bookmarks

AUDIT = "_audit"
ACTOR_ENV = "ENROLLMENT_ACTOR"
ACTOR_TAG = "enrollment/actor"
REVOKING = ("REVOKE", "DROP", "DETACH")
LF_REVOKING = ("revoke_permissions", "delete_data_cells_filter")
SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("job", pa.string()),
        ("batch", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("actor_source", pa.string()),
        ("host", pa.string()),
        ("kind", pa.string()),
        ("object", pa.string()),
        ("detail", pa.string()),
    ]
)


@dataclass(frozen=True)
class Entry:
    kind: str
    object: str
    detail: str = ""


@dataclass(frozen=True)
class Materialized:
    """An asset materialized by the run: its metadata values, and the lake paths among them."""

    asset: str
    values: Mapping[str, Any]
    paths: Mapping[str, str]

    @classmethod
    def from_metadata(cls, asset: str, metadata: Mapping[str, Any]) -> Materialized:
        paths = {k: str(v.path) for k, v in metadata.items() if isinstance(v, dg.PathMetadataValue)}
        return cls(asset, {k: getattr(v, "value", v) for k, v in metadata.items()}, paths)


def who(tags: Mapping[str, str], environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(actor, where the name comes from): $ENROLLMENT_ACTOR, the run tag `enrollment/actor`, the OS user."""
    environ = os.environ if environ is None else environ
    if environ.get(ACTOR_ENV):
        return environ[ACTOR_ENV], ACTOR_ENV
    if tags.get(ACTOR_TAG):
        return tags[ACTOR_TAG], f"run tag {ACTOR_TAG}"
    try:
        return getpass.getuser(), "os user"
    except (KeyError, OSError):
        return "unknown", "none"


def change_kind(change: str) -> str:
    """`revoke` for a change taking access or an object away (REVOKE, DROP, DETACH, a Lake Formation revocation
    or deleted filter), else `grant`. A Lake Formation change is its request as JSON."""
    if change.startswith("{"):
        return "revoke" if json.loads(change)["operation"] in LF_REVOKING else "grant"
    return "revoke" if change.upper().startswith(REVOKING) else "grant"


def raw_reads(lake, batch: str, datasets: Iterable[str]) -> list[Entry]:
    """The raw files the run's batch read (its manifests in the lake), by their path in the raw layer."""
    return [
        Entry("read", f"raw_layer/{f.relative}", f"{dataset}: {f.size_bytes} bytes, identity {f.identity}")
        for dataset in datasets
        for f in bookmarks.read_batch(lake, batch, dataset)
    ]


def asset_entries(materialized: list[Materialized], parents: Mapping[str, Iterable[str]]) -> list[Entry]:
    """Writes (each asset, each lake path it reported), reads (the assets each depends on), and the access-policy
    changes it reported (metadata `changes`: [{target, statement}])."""
    entries = []
    for item in materialized:
        counts = {k: v for k, v in item.values.items() if isinstance(v, int) and not isinstance(v, bool)}
        entries.append(Entry("write", f"asset:{item.asset}", json.dumps(counts, sort_keys=True) if counts else ""))
        entries += [Entry("write", path, f"asset:{item.asset} {k}") for k, path in sorted(item.paths.items())]
        entries += [Entry("read", f"asset:{p}", f"by asset:{item.asset}") for p in sorted(parents.get(item.asset, ()))]
        for change in item.values.get("changes") or []:
            entries.append(Entry(change_kind(change["statement"]), change["statement"], change["target"]))
    return list(dict.fromkeys(entries))


def record(run: Mapping[str, str], entries: list[Entry], environ: Mapping[str, str] | None = None) -> pa.Table:
    """The run's rows: `run` holds run_id, job, batch and the run's tags under `tags`."""
    actor, source = who(run.get("tags", {}), environ)
    now = datetime.now(UTC)
    header = {"run_id": run["run_id"], "job": run["job"], "batch": run["batch"], "recorded_at": now}
    header |= {"actor": actor, "actor_source": source, "host": socket.gethostname()}
    rows = [{**header, "kind": e.kind, "object": e.object, "detail": e.detail} for e in entries]
    return pa.Table.from_pylist(rows or [{**header, "kind": "run", "object": "", "detail": ""}], schema=SCHEMA)


def record_parts(run_id: str) -> tuple[str, str]:
    return AUDIT, f"{run_id}.parquet"


def write_record(lake, table: pa.Table) -> bool:
    """Write the run's record unless it exists (never rewritten); True when written now."""
    parts = record_parts(table["run_id"][0].as_py())
    if lake.exists(*parts):
        return False
    with lake.atomic_write(*parts) as temporary:
        pq.write_table(table, temporary, compression="snappy")
    return True


def read_log(lake) -> pa.Table:
    """Every run's record, as one table."""
    files = lake.list(AUDIT)
    return pa.concat_tables([pq.read_table(f, schema=SCHEMA) for f in files]) if files else SCHEMA.empty_table()


def recent_runs(lake, limit: int = 10) -> list[dict[str, Any]]:
    """The latest `limit` runs, newest first: who, when, and their reads, writes and access changes."""
    runs: dict[str, dict[str, Any]] = {}
    for row in read_log(lake).to_pylist():
        run = runs.setdefault(row["run_id"], run_summary(row))
        if row["kind"] in ("read", "write", "grant", "revoke"):
            key = "access_changes" if row["kind"] in ("grant", "revoke") else f"{row['kind']}s"
            run[key].append({"kind": row["kind"], "object": row["object"], "detail": row["detail"]})
    return sorted(runs.values(), key=lambda r: r["recorded_at"], reverse=True)[:limit]


def run_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("run_id", "job", "batch", "actor", "actor_source", "host")
    return {
        **{f: row[f] for f in fields},
        "recorded_at": row["recorded_at"].isoformat(),
        "reads": [],
        "writes": [],
        "access_changes": [],
    }
