"""Daily partitions by ingestion date, and the batch a run processes.

A raw file's ingestion date is the `ingest_date=YYYY-MM-DD` folder it sits in, else the UTC date it arrived
(its modification time). A run processes one batch: the not-yet-processed raw files whose ingestion dates fall
in the run's partition range. Every layer keys its staging output by that range, so runs of different ranges
never read each other's batches.
"""

import re
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

PARTITIONS_START = "2000-01-01"


def _with_cached_partition_keys(partitions: dg.TimeWindowPartitionsDefinition) -> dg.TimeWindowPartitionsDefinition:
    """`partitions`, answering `get_partition_keys` from a cache of the last enumeration.

    Dagster enumerates every key of a partitioned asset (~10,000 days since PARTITIONS_START, ~70 ms) in each step
    of an unpartitioned asset check that targets it, to look up the asset's data version. The keys only change
    when the last partition does, so they are enumerated once per last partition (same keys, same order). The
    definition itself (class, fields, equality, serialization) is untouched.
    """
    enumerate_keys = partitions.get_partition_keys
    cache: dict[str | None, tuple[str, ...]] = {}

    def get_partition_keys(current_time=None, dynamic_partitions_store=None) -> list[str]:
        with dg.partition_loading_context(current_time, dynamic_partitions_store):
            last = partitions.get_last_partition_key()
        if last not in cache:
            cache.clear()
            cache[last] = tuple(enumerate_keys(current_time, dynamic_partitions_store))
        return list(cache[last])

    object.__setattr__(partitions, "get_partition_keys", get_partition_keys)  # a record: no regular setattr
    return partitions


ingest_date_partitions = _with_cached_partition_keys(
    dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)
)
# every partition in a backfill is one batch: the layers merge into shared state, so one run, in order
single_run_backfill = dg.BackfillPolicy.single_run()

_INGEST_FOLDER = re.compile(r"(?:^|/)ingest_date=(\d{4}-\d{2}-\d{2})(?:/|$)")
_RANGE_START = "dagster/asset_partition_range_start"
_RANGE_END = "dagster/asset_partition_range_end"
_PARTITION = "dagster/partition"


def ingest_date(relative_path: str, modified_ns: int) -> str:
    """The ingestion date of a raw file: its `ingest_date=` folder, else the day it was last written (UTC)."""
    found = _INGEST_FOLDER.search(relative_path)
    if found:
        return found.group(1)
    return datetime.fromtimestamp(modified_ns / 1e9, UTC).strftime("%Y-%m-%d")


def batch_range(tags: Mapping[str, str]) -> tuple[str, str]:
    """The (first, last) ingestion dates of a run, from its partition tags."""
    if _RANGE_START in tags:
        return tags[_RANGE_START], tags[_RANGE_END]
    if _PARTITION in tags:
        return tags[_PARTITION], tags[_PARTITION]
    raise dg.Failure(
        "this run has no ingestion-date partition: materialize a partition or a range of them "
        "(the CLI `enrollment-platform run` picks the range of the files not yet processed)",
        allow_retries=False,
    )


def batch_key(tags: Mapping[str, str]) -> str:
    """The name of a run's batch, used for staging files: `2024-06-01` or `2024-06-01..2024-06-30`."""
    first, last = batch_range(tags)
    return first if first == last else f"{first}..{last}"


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make a run cover the ingestion dates first..last (a single-run backfill)."""
    return {_RANGE_START: first, _RANGE_END: last}


def in_range(date: str, first: str, last: str) -> bool:
    return first <= date <= last
