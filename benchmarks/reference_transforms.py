"""The two reference transforms of the pipeline benchmark: one DuckDB SQL pass per dataset, and plain pandas.

Both do the same thing to a generated raw layer (``enrollment_platform.generator``), dataset by dataset:
read every raw file (CSV as text, plus the students' JSON lines and the enrollments' Parquet), trim and case
the text, parse the two date formats and the timestamps, cast the numbers, redact SSNs, e-mail addresses and
phone numbers in the free-text ``notes``, keep the newest row per id (by ``last_modified``), apply the range
and reference checks of the rulesets (an enrollment needs a date, marks and attendance in [0, 100], a known
student and course; an instructor rating outside [0, 5] becomes NULL), and write ``<out>/<dataset>.parquet``
with Snappy. No lineage, quarantine, keyed PII hashing, warehouse or bookkeeping: that is the pipeline's extra.

The column names are the generator's (the canonical ones); the raw files' *values* are messy on purpose.

    .venv/bin/python benchmarks/reference_transforms.py duckdb --raw RAW --out OUT    # prints rows out per dataset
    .venv/bin/python benchmarks/reference_transforms.py pandas --raw RAW --out OUT
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

DATASETS = ("students", "courses", "instructors", "enrollments")  # referenced datasets first
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")  # %m/%d/%Y also reads M/D/YYYY, in DuckDB and in pandas
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
LAST_MODIFIED = "last_modified"
# free-text redaction, in this order: entity placeholder and the RE2/Python pattern that finds it
REDACTIONS = (
    ("[USA_SSN]", r"\b\d{3}-\d{2}-\d{4}\b"),
    ("[EMAIL]", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    ("[PHONE_NUMBER]", r"(?:\+1[ .-]?)?(?:\(\d{3}\) ?|\b\d{3}[ .-]?)\d{3}[ .-]?\d{4}\b"),
)
# column -> kind: id/text (trimmed), name (trimmed, each word capitalized), upper, lower, int, double, date,
# timestamp, notes (trimmed free text, redacted)
SCHEMAS: dict[str, dict[str, str]] = {
    "students": {
        "student_id": "id",
        "first_name": "name",
        "last_name": "name",
        "date_of_birth": "date",
        "gender": "upper",
        "email": "lower",
        "phone": "text",
        "ssn": "text",
        "address": "text",
        "city": "name",
        "state": "upper",
        "postal_code": "text",
        "major": "text",
        "notes": "notes",
        "last_modified": "timestamp",
    },
    "courses": {
        "course_id": "id",
        "course_name": "text",
        "department": "name",
        "credits": "int",
        "start_date": "date",
        "end_date": "date",
        "last_modified": "timestamp",
    },
    "instructors": {
        "instructor_id": "id",
        "first_name": "name",
        "last_name": "name",
        "department": "name",
        "specialization": "text",
        "rating": "double",
        "email": "lower",
        "last_modified": "timestamp",
    },
    "enrollments": {
        "enrollment_id": "id",
        "student_id": "id",
        "course_id": "id",
        "instructor_id": "id",
        "enrollment_date": "date",
        "term": "upper",
        "status": "lower",
        "marks": "double",
        "grade": "upper",
        "attendance_percentage": "double",
        "payment_status": "text",
        "tuition_amount": "double",
        "notes": "notes",
        "last_modified": "timestamp",
    },
}
PRIMARY_KEY = {"students": "student_id", "courses": "course_id", "instructors": "instructor_id"}
PRIMARY_KEY["enrollments"] = "enrollment_id"
REQUIRED = {"enrollments": ("enrollment_date",)}  # a row without it is dropped
RANGES = {"enrollments": {"marks": (0, 100), "attendance_percentage": (0, 100)}}  # inclusive; else dropped
NULLIFY = {"instructors": {"rating": (0, 5)}}  # inclusive; else the value becomes NULL, the row stays
REFERENCES = {"enrollments": {"student_id": "students", "course_id": "courses"}}  # unknown id: dropped


def raw_files(raw: Path, dataset: str, suffix: str) -> list[str]:
    """Every ``*<suffix>`` file below ``<raw>/<dataset>/`` (any depth, e.g. ``ingest_date=`` folders)."""
    return sorted(str(path) for path in (Path(raw) / dataset).rglob(f"*{suffix}"))


def output_path(out: Path, dataset: str) -> Path:
    return Path(out) / f"{dataset}.parquet"


# ---------------------------------------------------------------------------------------------- DuckDB


def _sql_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def _sql_value(column: str, kind: str) -> str:
    v = f"nullif(trim({column}), '')"
    match kind:
        case "id" | "text":
            return v
        case "name":
            return (
                f"array_to_string(list_transform(string_split(lower({v}), ' '), lambda w: upper(w[1]) || w[2:]), ' ')"
            )
        case "upper" | "lower":
            return f"{kind}({v})"
        case "int":
            return f"TRY_CAST({v} AS BIGINT)"
        case "double":
            return f"TRY_CAST({v} AS DOUBLE)"
        case "date":
            return f"CAST(try_strptime({v}, {_sql_list(DATE_FORMATS)}) AS DATE)"
        case "timestamp":
            return f"try_strptime({v}, '{TIMESTAMP_FORMAT}')"
        case "notes":
            for placeholder, pattern in REDACTIONS:
                v = f"regexp_replace({v}, '{pattern}', '{placeholder}', 'g')"
            return v
    raise ValueError(f"unknown column kind {kind!r}")


def _sql_source(raw: Path, dataset: str) -> str:
    """Every raw file of the dataset as text columns, by name."""
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in SCHEMAS[dataset]) + "}"
    parts = []
    if csv := raw_files(raw, dataset, ".csv"):
        options = "all_varchar = true, header = true, delim = ',', union_by_name = true, hive_partitioning = false"
        parts.append(f"SELECT * FROM read_csv({_sql_list(csv)}, {options})")
    if jsonl := raw_files(raw, dataset, ".jsonl"):
        parts.append(f"SELECT * FROM read_json({_sql_list(jsonl)}, format = 'newline_delimited', columns = {columns})")
    if parquet := raw_files(raw, dataset, ".parquet"):
        parts.append(f"SELECT * FROM read_parquet({_sql_list(parquet)}, hive_partitioning = false)")
    if not parts:
        raise FileNotFoundError(f"no raw files under {Path(raw) / dataset}")
    return " UNION ALL BY NAME ".join(parts)


def _sql_checks(dataset: str, out: Path) -> list[str]:
    checks = [f"{column} IS NOT NULL" for column in REQUIRED.get(dataset, ())]
    checks += [f"{column} BETWEEN {lo} AND {hi}" for column, (lo, hi) in RANGES.get(dataset, {}).items()]
    for column, target in REFERENCES.get(dataset, {}).items():
        known = f"SELECT {PRIMARY_KEY[target]} FROM read_parquet('{output_path(out, target)}')"
        checks.append(f"{column} IN ({known})")
    return checks or ["true"]


def baseline_sql(raw: Path, out: Path, dataset: str) -> str:
    """The one SQL pass of a dataset: read, standardize, redact, keep the newest row per id, check, write."""
    key = PRIMARY_KEY[dataset]
    typed = ", ".join(f"{_sql_value(c, kind)} AS {c}" for c, kind in SCHEMAS[dataset].items())
    nullified = ", ".join(
        f"CASE WHEN {c} BETWEEN {lo} AND {hi} THEN {c} END AS {c}" for c, (lo, hi) in NULLIFY.get(dataset, {}).items()
    )
    select = f"* REPLACE ({nullified})" if nullified else "*"
    return f"""
COPY (
  WITH typed AS (SELECT {typed} FROM ({_sql_source(raw, dataset)})),
  latest AS (
    SELECT * FROM typed WHERE {key} IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {LAST_MODIFIED} DESC NULLS LAST) = 1
  )
  SELECT {select} FROM latest WHERE {" AND ".join(_sql_checks(dataset, out))}
) TO '{output_path(out, dataset)}' (FORMAT parquet, COMPRESSION snappy)
"""


def run_duckdb(raw: Path, out: Path, connection: duckdb.DuckDBPyConnection | None = None) -> dict[str, int]:
    """The DuckDB baseline over every dataset, in one connection; rows written per dataset."""
    import duckdb

    Path(out).mkdir(parents=True, exist_ok=True)
    con = connection or duckdb.connect()
    return {dataset: con.execute(baseline_sql(raw, out, dataset)).fetchone()[0] for dataset in DATASETS}


# ---------------------------------------------------------------------------------------------- pandas


def _read_json_text(path: Path) -> pd.DataFrame:
    """JSON lines as text; JSON nulls stay missing (pandas 2 turns them into 'None' under dtype=str)."""
    import pandas as pd

    typed = pd.read_json(path, lines=True, dtype=False)
    return pd.read_json(path, lines=True, dtype=str).where(typed.notna(), None)


def _read_pandas(raw: Path, dataset: str) -> pd.DataFrame:
    import pandas as pd

    frames = [pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""]) for f in raw_files(raw, dataset, ".csv")]
    frames += [_read_json_text(f) for f in raw_files(raw, dataset, ".jsonl")]
    frames += [pd.read_parquet(f) for f in raw_files(raw, dataset, ".parquet")]
    if not frames:
        raise FileNotFoundError(f"no raw files under {Path(raw) / dataset}")
    return pd.concat(frames, ignore_index=True)[list(SCHEMAS[dataset])]


def _redact(s: pd.Series) -> pd.Series:
    for placeholder, pattern in REDACTIONS:
        s = s.str.replace(pattern, placeholder, regex=True)
    return s


def _to_date(s: pd.Series) -> pd.Series:
    import pandas as pd

    first, *others = DATE_FORMATS
    parsed = pd.to_datetime(s, format=first, errors="coerce")
    for fmt in others:
        parsed = parsed.fillna(pd.to_datetime(s, format=fmt, errors="coerce"))
    return parsed.astype("date32[pyarrow]")  # a date, not a timestamp, as the other engines write it


def _pandas_cleaners() -> dict[str, Callable[[pd.Series], pd.Series]]:
    import pandas as pd

    return {
        "id": lambda s: s,
        "text": lambda s: s,
        "name": lambda s: s.str.title(),
        "upper": lambda s: s.str.upper(),
        "lower": lambda s: s.str.lower(),
        "int": lambda s: pd.to_numeric(s, errors="coerce").astype("Int64"),
        "double": lambda s: pd.to_numeric(s, errors="coerce").astype("float64"),
        "date": _to_date,
        "timestamp": lambda s: pd.to_datetime(s, format=TIMESTAMP_FORMAT, errors="coerce").astype("datetime64[us]"),
        "notes": _redact,
    }


def transform_pandas(raw: Path, dataset: str, known: dict[str, pd.Series]) -> pd.DataFrame:
    """One dataset, standardized, deduplicated and checked; ``known`` holds the referenced datasets' ids."""
    df = _read_pandas(raw, dataset)
    cleaners = _pandas_cleaners()
    for column, kind in SCHEMAS[dataset].items():
        text = df[column].str.strip()
        df[column] = cleaners[kind](text.mask(text == ""))
    key = PRIMARY_KEY[dataset]
    df = df[df[key].notna()]
    df = df.sort_values(LAST_MODIFIED, ascending=False, na_position="last", kind="stable")
    df = df.drop_duplicates(subset=key, keep="first")
    keep = df[list(REQUIRED.get(dataset, ()))].notna().all(axis=1)
    for column, (lo, hi) in RANGES.get(dataset, {}).items():
        keep &= df[column].between(lo, hi)
    for column, target in REFERENCES.get(dataset, {}).items():
        keep &= df[column].isin(known[target])
    df = df[keep]
    for column, (lo, hi) in NULLIFY.get(dataset, {}).items():
        df[column] = df[column].where(df[column].between(lo, hi))
    return df


def run_pandas(raw: Path, out: Path) -> dict[str, int]:
    """The pandas version over every dataset; rows written per dataset."""
    Path(out).mkdir(parents=True, exist_ok=True)
    known: dict[str, pd.Series] = {}
    rows = {}
    for dataset in DATASETS:
        df = transform_pandas(raw, dataset, known)
        df.to_parquet(output_path(out, dataset), engine="pyarrow", compression="snappy", index=False)
        known[dataset] = df[PRIMARY_KEY[dataset]]
        rows[dataset] = len(df)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engine", choices=["duckdb", "pandas"])
    parser.add_argument("--raw", type=Path, required=True, help="raw layer: <raw>/<dataset>/**/<file>")
    parser.add_argument("--out", type=Path, required=True, help="folder for <dataset>.parquet")
    args = parser.parse_args()
    rows = run_duckdb(args.raw, args.out) if args.engine == "duckdb" else run_pandas(args.raw, args.out)
    print(json.dumps({"rows_out": rows}))


if __name__ == "__main__":
    main()
