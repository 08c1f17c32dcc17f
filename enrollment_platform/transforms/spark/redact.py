"""PII actions per column (Spark backend of `transforms.redact.redact_sql`), as config/pii_policy.yaml says.

hash: HMAC-SHA256 from the pre-padded key with Spark's sha2/unhex, over the same normalized value, so tokens
equal the DuckDB ones. Free text: cells matching the detector's prefilter go to a vectorised UDF calling the same
Python detector (an Arrow UDF, pandas on older Sparks); each detection becomes "[ENTITY]".
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from enrollment_platform.config import DatasetSpec
from enrollment_platform.pii.detectors import Detector, default_detector
from enrollment_platform.pii.keys import hmac_pads
from enrollment_platform.transforms.redact import DIGIT_ENTITIES
from enrollment_platform.transforms.spark.io import write_parquet


def _normalized(column: Column, entity: str) -> Column:
    if entity in DIGIT_ENTITIES:
        digits = F.regexp_replace(column, "[^0-9]", "")
        return F.when(digits != "", digits)
    return F.lower(F.trim(column.cast("string")))


def hmac_column(value: Column, key: bytes) -> Column:
    """HMAC-SHA256(key, utf-8 value) as lowercase hex, like `hmac_sql`."""
    inner, outer = hmac_pads(key)
    inner_digest = F.unhex(F.sha2(F.concat(F.unhex(F.lit(inner.hex())), F.encode(value, "UTF-8")), 256))
    return F.sha2(F.concat(F.unhex(F.lit(outer.hex())), inner_digest), 256)


def redact_text_udf(detector: Detector | None = None):
    """A vectorised UDF redacting free text with the Python detector (built on the workers when not given).

    Spark >= 4.1 hands it Arrow arrays (no pandas needed, like the DuckDB Arrow UDF); older Sparks (Glue 5's
    3.5, which ships pandas) get the same function as a pandas UDF.
    """

    def redact_values(values: list) -> list:
        found = detector or default_detector()
        return [None if text is None else found.redact(text) for text in values]

    if hasattr(F, "arrow_udf"):

        def pii_redact(texts: pa.Array) -> pa.Array:
            return pa.array(redact_values(texts.to_pylist()), pa.string())

        return F.arrow_udf(pii_redact, "string")

    def pii_redact_pandas(texts):  # pragma: no cover - Spark < 4.1 only
        import pandas as pd

        values = [None if pd.isna(t) else t for t in texts]
        return pd.Series(redact_values(values), dtype="object")

    return F.pandas_udf(pii_redact_pandas, "string")


def action_column(column: str, rule: dict[str, Any], key: bytes | None, detector: Detector | None) -> Column | None:
    """The Column for one protected column, or None when the column is dropped."""
    source = F.col(column)
    entity = rule.get("entity", "PII")
    match rule["action"]:
        case "keep":
            return source
        case "drop":
            return None
        case "redact":
            return F.when(source.isNotNull(), F.lit(f"[{entity}]"))
        case "partial":
            digits = _normalized(source, entity)
            keep = int(rule.get("keep_last", 4))
            masked = F.concat(
                F.repeat(F.lit("*"), F.greatest(F.length(digits) - keep, F.lit(0))), F.right(digits, F.lit(keep))
            )
            return F.when(digits.isNotNull(), masked)
        case "hash":
            if key is None:
                raise ValueError(f"column {column}: action hash needs the PII key")
            normalized = _normalized(source, entity)
            return F.when(normalized.isNotNull(), hmac_column(normalized, key))
        case "generalize":
            return F.year(source).cast("int")
        case "redact_entities":
            prefilter = (detector or default_detector()).prefilter
            return F.when(source.rlike(prefilter), redact_text_udf(detector)(source)).otherwise(source)
    raise ValueError(f"column {column}: unknown PII action {rule['action']!r}")


def redacted_frame(
    spec: DatasetSpec, policy: dict[str, Any], key: bytes | None, validated: DataFrame, detector: Detector | None = None
) -> DataFrame:
    """The validated rows with every column's action applied; unlisted columns pass through."""
    rules = policy.get("datasets", {}).get(spec.name, {})
    outputs = []
    for column in (*spec.columns, *spec.derived, "_source_file", "_source_row", "_flags"):
        rule = rules.get(column)
        if rule is None:
            outputs.append(F.col(column))
            continue
        expression = action_column(column, rule, key, detector)
        if expression is not None:
            outputs.append(expression.alias(rule.get("output", column)))
    return validated.select(*outputs)


def redact(
    spec: DatasetSpec,
    policy: dict[str, Any],
    key: bytes | None,
    validated: DataFrame,
    out_path: str,
    detector: Detector | None = None,
) -> int:
    """Redact the validated rows (`transforms.spark.validate.validated_frame`) into `out_path`; returns the rows
    written."""
    return write_parquet(redacted_frame(spec, policy, key, validated, detector), out_path)
