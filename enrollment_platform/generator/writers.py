"""File writers of the raw layer: CSV (unquoted, empty = missing), JSON lines (strings or null), Parquet."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

# Files a previous run may have written (removed first so a smaller layer leaves no stale parts).
GENERATED = [
    "_manifest.json",
    "students/students_*.csv",
    "students/students_extra.jsonl",
    "courses/courses.csv",
    "instructors/instructors.csv",
    "enrollments/enrollments_*.csv",
    "enrollments/enrollments_late.parquet",
]


def clear_previous(out_dir: Path) -> None:
    for pattern in GENERATED:
        for path in out_dir.glob(pattern):
            path.unlink()


def chunks(n: int, max_rows: int, min_parts: int = 1) -> list[tuple[int, int]]:
    """Contiguous, nearly equal ``(start, stop)`` ranges covering ``n`` rows, none above ``max_rows``."""
    parts = max(min_parts, -(-n // max_rows), 1)
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def write_csv(path: Path, table: pa.Table) -> None:
    """CSV with a plain header and no quoting (values hold no comma, quote or line break); null → empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        if table.num_rows:
            options = pcsv.WriteOptions(include_header=False, quoting_style="none")
            pcsv.write_csv(table, sink, options)


def write_jsonl(path: Path, table: pa.Table) -> None:
    """JSON lines, one object per row, every value a JSON string or null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    members = []
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
        quoted = pc.binary_join_element_wise('"', escaped, '"', "")
        members.append(pc.binary_join_element_wise(json.dumps(name) + ": ", pc.fill_null(quoted, "null"), ""))
    lines = pc.binary_join_element_wise("{", pc.binary_join_element_wise(*members, ", "), "}", "")
    path.write_text("".join(line + "\n" for line in lines.to_pylist()), encoding="utf-8")


def write_parquet(path: Path, table: pa.Table) -> None:
    """Parquet, every column a string, Snappy-compressed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(pa.schema([(n, pa.string()) for n in table.column_names])), path, compression="snappy")
