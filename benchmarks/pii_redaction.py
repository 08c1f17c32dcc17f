"""Benchmark: free-text PII redaction and the detection counts on generated enrollments' notes.

Generates a raw layer (or reuses one), loads the enrollments' notes into DuckDB, then times
- redaction: the pipeline's SQL (`CASE WHEN regexp_matches(prefilter) THEN pii_redact(notes) ...`) written to
  Parquet/Snappy, as the redacted asset does;
- the same without the prefilter (every non-null note through the Python detector), for comparison;
- detection counts: per entity, the number of notes holding it (the detection report's query).

    .venv/bin/python benchmarks/pii_redaction.py --enrollments 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from enrollment_platform.generator import generate_raw_layer
from enrollment_platform.pii.detectors import default_detector
from enrollment_platform.pii.duckdb_functions import REDACT_FUNCTION, redact_text_sql, register_pii_functions
from enrollment_platform.pii.scan import count_entities


def timed(label: str, action) -> object:
    start = time.perf_counter()
    result = action()
    print(f"{label:<56} {time.perf_counter() - start:8.2f} s")
    return result


PARQUET = "(FORMAT parquet, COMPRESSION snappy)"
# The earlier free-text redaction: RE2 patterns only (no Luhn, SSN ranges, dates or IPv6), for comparison.
BARE_PATTERNS = {
    "USA_SSN": r"\b\d{3}-\d{2}-\d{4}\b",
    "EMAIL": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
    "CREDIT_CARD": r"\b(?:\d[ -]?){12,18}\d\b",
    "PHONE_NUMBER": r"(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-]?)\d{3}[ .-]?\d{4}\b",
    "IP_ADDRESS": r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
}


def bare_regex_sql(value: str) -> str:
    for entity, pattern in BARE_PATTERNS.items():
        value = f"regexp_replace({value}, '{pattern}', '[{entity}]', 'g')"
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--raw", type=Path, help="reuse this generated raw layer instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        raw = args.raw or Path(scratch, "raw")
        if args.raw is None:
            manifest = timed(
                f"generate {args.enrollments:,} enrollments",
                lambda: generate_raw_layer(raw, args.enrollments, args.seed),
            )
            print(
                "generator manifest: notes_with_pii", manifest["datasets"]["enrollments"]["defects"]["notes_with_pii"]
            )
        detector = default_detector()
        con = duckdb.connect()
        register_pii_functions(con, detector)
        sources = [f"SELECT notes FROM read_csv('{raw}/enrollments/*.csv', all_varchar=true, union_by_name=true)"]
        if list(Path(raw, "enrollments").glob("*.parquet")):
            sources.append(f"SELECT CAST(notes AS VARCHAR) FROM read_parquet('{raw}/enrollments/*.parquet')")
        con.execute("CREATE TABLE notes AS " + " UNION ALL ".join(sources))
        total, with_text, candidates = con.execute(
            "SELECT count(*), count(notes), count(*) FILTER (WHERE regexp_matches(notes, ?)) FROM notes",
            [detector.prefilter],
        ).fetchone()
        print(f"rows {total:,}, notes {with_text:,}, notes passing the prefilter {candidates:,}")
        out = Path(scratch, "redacted.parquet")
        timed(
            "redact (prefilter + Arrow UDF) -> Parquet",
            lambda: con.execute(
                f"COPY (SELECT {redact_text_sql('notes', detector.prefilter)} AS notes FROM notes) TO '{out}' {PARQUET}"
            ),
        )
        timed(
            "redact (Arrow UDF on every note) -> Parquet",
            lambda: con.execute(f"COPY (SELECT {REDACT_FUNCTION}(notes) AS notes FROM notes) TO '{out}' {PARQUET}"),
        )
        timed(
            "regexp_replace with bare RE2 patterns (no validation)",
            lambda: con.execute(f"COPY (SELECT {bare_regex_sql('notes')} AS notes FROM notes) TO '{out}' {PARQUET}"),
        )
        counts = timed(
            "detection counts (prefilter + distinct values)",
            lambda: count_entities(lambda sql: con.execute(sql).fetchall(), "notes", "notes", detector),
        )
        print("detections:", dict(sorted(counts.items())), "total", sum(counts.values()))


if __name__ == "__main__":
    main()
