"""The detector inside DuckDB: vectorised Arrow UDFs, called only on cells that pass the RE2 prefilter.

`pii_redact(text)` returns the text with each detected entity replaced by `[ENTITY]`; `pii_entities(text)` the
sorted list of entity names found. `redact_text_sql` wraps the call in `CASE WHEN regexp_matches(...)` so that
DuckDB hands Python only the cells that may hold PII, and not those whose redaction SQL can do (pii.shortcuts).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from enrollment_platform.pii.detectors import Detector, default_detector
from enrollment_platform.pii.shortcuts import shortcuts_for
from enrollment_platform.transforms.sql import quote_literal

REDACT_FUNCTION = "pii_redact"
ENTITIES_FUNCTION = "pii_entities"


def register_pii_functions(con: duckdb.DuckDBPyConnection, detector: Detector | None = None) -> None:
    """Define pii_redact and pii_entities on this connection."""
    detector = detector or default_detector()

    def redact(texts: pa.Array) -> pa.Array:
        return pa.array([detector.redact(t) for t in texts.to_pylist()], pa.string())

    def entities(texts: pa.Array) -> pa.Array:
        found = [None if t is None else sorted(detector.entities_in(t)) for t in texts.to_pylist()]
        return pa.array(found, pa.list_(pa.string()))

    con.create_function(REDACT_FUNCTION, redact, ["VARCHAR"], "VARCHAR", type="arrow")
    con.create_function(ENTITIES_FUNCTION, entities, ["VARCHAR"], "VARCHAR[]", type="arrow")


def redact_text_sql(value: str, prefilter: str, detector: Detector | None = None) -> str:
    """SQL redacting free text: cells that cannot hold PII are passed through without calling Python. Given the
    detector, cells whose redaction is proven (pii.shortcuts) are redacted in SQL too."""
    candidate = f"regexp_matches({value}, {quote_literal(prefilter)})"
    redacted = f"{REDACT_FUNCTION}({value})"
    shortcuts = shortcuts_for(detector) if detector is not None else None
    if shortcuts is not None:
        redacted = shortcuts.redact_sql(value, redacted)
    return f"CASE WHEN {candidate} THEN {redacted} ELSE {value} END"


class PiiEngine:
    """An engine whose connections know the PII functions: pass it wherever a DuckDBEngine is expected."""

    def __init__(self, engine, detector: Detector | None = None):
        self.engine = engine
        self.detector = detector or default_detector()

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = self.engine.connect(private=True)  # a database holds one definition of each function
        register_pii_functions(con, self.detector)
        return con
