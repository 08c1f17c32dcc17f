"""The detection report of a run, like Glue's DetectedEntities summed up: per dataset, column and entity the
number of cells in which the entity was detected, and the action the policy takes. Counts only, never values.

It covers every row that came into the run (the standardized layer: duplicates and rows later quarantined
included), every text column and every column the policy names. Columns that look like PII (column-level
classification) but have no policy entry are flagged: that is how new leaks start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from enrollment_platform.pii.classify import Classification, classification_settings, classify_values
from enrollment_platform.pii.detectors import Detector
from enrollment_platform.pii.scan import Fetch, count_expressions, is_text, sample_values, text_expression
from enrollment_platform.pii.shortcuts import shortcuts_for

REPORT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("dataset", pa.string()),
        ("column", pa.string()),
        ("entity", pa.string()),
        ("detections", pa.int64()),
        ("action", pa.string()),
    ]
)


@dataclass(frozen=True)
class Detection:
    dataset: str
    column: str
    entity: str
    detections: int
    action: str


@dataclass
class DatasetScan:
    """What one dataset's scan found: detections, and PII-looking columns the policy does not protect."""

    detections: list[Detection] = field(default_factory=list)
    unprotected: dict[str, Classification] = field(default_factory=dict)


def report_path(dataset: str, run_id: str) -> list[str]:
    return ["pii_reports", f"dataset={dataset}", f"run_id={run_id}", "detections.parquet"]


def action_for(rule: Mapping[str, Any] | None) -> str:
    """The report's name for a column's action: `none` when the policy does not list the column."""
    if rule is None:
        return "none"
    return "redact" if rule["action"] == "redact_entities" else str(rule["action"])


def columns_to_scan(columns: Iterable[tuple[str, str]], rules: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Text columns, and any column the policy protects (a DATE of birth is scanned as its text)."""
    return [(name, data_type) for name, data_type in columns if is_text(data_type) or name in rules]


def scan_dataset(
    fetch: Fetch,
    relation: str,
    dataset: str,
    columns: Iterable[tuple[str, str]],
    policy: Mapping[str, Any],
    detector: Detector,
) -> DatasetScan:
    """Count detections in every cell of the scanned columns; classify unprotected columns from a sample."""
    rules = (policy.get("datasets") or {}).get(dataset, {})
    sample_rows, threshold = classification_settings(policy)
    scanned = columns_to_scan(columns, rules)
    expressions = [text_expression(column, data_type) for column, data_type in scanned]
    # A column without any detection has no value passing the prefilter that holds an entity, and (proven for
    # the short-cuts' detector, see pii.shortcuts) no other value holding one: its sample would classify as None.
    proven = shortcuts_for(detector) is not None
    scan = DatasetScan()
    for (column, _), expression, counts in zip(
        scanned, expressions, count_expressions(fetch, relation, expressions, detector), strict=True
    ):
        action = action_for(rules.get(column))
        scan.detections += [Detection(dataset, column, e, n, action) for e, n in sorted(counts.items())]
        if column not in rules and (counts or not proven):
            found = classify_values(sample_values(fetch, relation, expression, sample_rows), detector, threshold)
            if found.entity:
                scan.unprotected[column] = found
    return scan


def write_report(lake, run_id: str, dataset: str, detections: list[Detection]) -> str:
    """Write the dataset's report for this run (atomically, Snappy Parquet); return its path."""
    rows = [{"run_id": run_id, **asdict(d)} for d in detections]
    table = pa.Table.from_pylist(rows, schema=REPORT_SCHEMA)
    parts = report_path(dataset, run_id)
    with lake.atomic_write(*parts) as temporary:
        pq.write_table(table, temporary, compression="snappy")
    return lake.path(*parts)
