"""PII actions per column (DuckDB backend), as config/pii_policy.yaml says.

hash: HMAC-SHA256 computed in SQL from the pre-padded key, over a normalized value (digits only for SSN and
phone), so the same person gives the same token in every table and every engine. Free text goes through the
PII detector (validated detections, not bare patterns): the SQL calls `pii_redact`, a UDF that the connection
must define (`enrollment_platform.pii.duckdb_functions`), only on cells matching the detector's RE2 prefilter;
each detection becomes "[ENTITY]".
"""

from __future__ import annotations

from typing import Any

from enrollment_platform.config import DatasetSpec
from enrollment_platform.pii.detectors import Detector, default_detector
from enrollment_platform.pii.duckdb_functions import redact_text_sql
from enrollment_platform.pii.keys import hmac_pads
from enrollment_platform.transforms.sql import quote_ident, quote_literal

DIGIT_ENTITIES = ("USA_SSN", "PHONE_NUMBER", "CREDIT_CARD")


def _blob(value: bytes) -> str:
    return f"unhex('{value.hex()}')"


def _normalized(column: str, entity: str) -> str:
    if entity in DIGIT_ENTITIES:
        return f"nullif(regexp_replace({column}, '[^0-9]', '', 'g'), '')"
    return f"lower(trim(CAST({column} AS VARCHAR)))"


def hmac_sql(value: str, key: bytes) -> str:
    inner, outer = hmac_pads(key)
    return f"sha256({_blob(outer)} || unhex(sha256({_blob(inner)} || encode({value}))))"


def action_sql(
    column: str, rule: dict[str, Any], key: bytes | None, prefilter: str, detector: Detector | None = None
) -> str | None:
    """The SQL for one protected column, or None when the column is dropped."""
    source = quote_ident(column)
    entity = rule.get("entity", "PII")
    match rule["action"]:
        case "keep":
            return source
        case "drop":
            return None
        case "redact":
            return f"CASE WHEN {source} IS NOT NULL THEN {quote_literal(f'[{entity}]')} END"
        case "partial":
            digits = _normalized(source, entity)
            keep = int(rule.get("keep_last", 4))
            masked = f"repeat('*', greatest(length({digits}) - {keep}, 0)) || right({digits}, {keep})"
            return f"CASE WHEN {digits} IS NOT NULL THEN {masked} END"
        case "hash":
            if key is None:
                raise ValueError(f"column {column}: action hash needs the PII key")
            normalized = _normalized(source, entity)
            return f"CASE WHEN {normalized} IS NOT NULL THEN {hmac_sql(normalized, key)} END"
        case "generalize":
            return f"CAST(year({source}) AS INTEGER)"
        case "redact_entities":
            return redact_text_sql(source, prefilter, detector)
    raise ValueError(f"column {column}: unknown PII action {rule['action']!r}")


def redact_sql(
    spec: DatasetSpec, policy: dict[str, Any], key: bytes | None, source: str, detector: Detector | None = None
) -> str:
    """SELECT over validated rows applying every column's action; unlisted columns pass through."""
    rules = policy.get("datasets", {}).get(spec.name, {})
    detector = detector or default_detector()
    outputs = []
    for column in (*spec.columns, *spec.derived, "_source_file", "_source_row", "_flags"):
        rule = rules.get(column)
        if rule is None:
            outputs.append(quote_ident(column))
            continue
        expression = action_sql(column, rule, key, detector.prefilter, detector)
        if expression is not None:
            outputs.append(f"{expression} AS {quote_ident(rule.get('output', column))}")
    return f"SELECT {', '.join(outputs)} FROM {source}"


def needs_key(policy: dict[str, Any]) -> bool:
    return any(
        rule.get("action") == "hash" for columns in policy.get("datasets", {}).values() for rule in columns.values()
    )
