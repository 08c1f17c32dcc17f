"""Column-level classification, like AWS Glue's classifyColumns: a column is an entity type when at least a
configured share of its sampled values contain that entity (config: pii_policy.yaml `column_classification`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from enrollment_platform.pii.detectors import Detector


@dataclass(frozen=True)
class Classification:
    entity: str | None
    share: float
    sampled: int


def classification_settings(policy: Mapping[str, Any]) -> tuple[int, float]:
    """(sample_rows, threshold_fraction) from the policy, with Glue's default threshold of 0.1."""
    settings = policy.get("column_classification") or {}
    return int(settings.get("sample_rows", 1000)), float(settings.get("threshold_fraction", 0.1))


def classify_values(values: Iterable[str | None], detector: Detector, threshold: float) -> Classification:
    """The entity found in the largest share of the non-empty values, when that share reaches `threshold`."""
    present = [v for v in values if v]
    if not present:
        return Classification(None, 0.0, 0)
    counts: Counter[str] = Counter()
    for value in present:
        counts.update(detector.entities_in(value))
    if not counts:
        return Classification(None, 0.0, len(present))
    entity, hits = max(counts.items(), key=lambda item: (item[1], -detector.rank[item[0]]))
    share = hits / len(present)
    return Classification(entity if share >= threshold else None, share, len(present))
