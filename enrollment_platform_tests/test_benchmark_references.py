"""The pipeline benchmark's two references (benchmarks/reference_transforms.py) are one and the same transform:
on a generated layer, the DuckDB pass and the pandas script write the same rows, and as many as the generator's
manifest says a correct pipeline run keeps."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from enrollment_platform.generator import generate_raw_layer
from enrollment_platform_tests.conftest import REPO


def _load_references() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "reference_transforms", REPO / "benchmarks" / "reference_transforms.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


references = _load_references()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict:
    """A small layer, laid out as the benchmark does (an ingest_date= folder), and both references' outputs."""
    root = tmp_path_factory.mktemp("references")
    flat = root / "flat"
    manifest = generate_raw_layer(flat, 2000, seed=3)
    raw = root / "raw"
    for file in flat.glob("*/*.*"):
        target = raw / file.parent.name / "ingest_date=2025-01-01" / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        file.rename(target)
    rows = {
        "duckdb": references.run_duckdb(raw, root / "duckdb"),
        "pandas": references.run_pandas(raw, root / "pandas"),
    }
    return {"root": root, "manifest": manifest, "rows": rows}


def _table(path: Path, key: str) -> tuple[list, list]:
    """(column names and types, rows sorted by key) as DuckDB reads the Parquet file."""
    with duckdb.connect() as con:
        relation = con.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY {key}")
        return list(zip(relation.columns, map(str, relation.types), strict=True)), relation.fetchall()


@pytest.mark.parametrize("dataset", references.DATASETS)
def test_duckdb_and_pandas_write_the_same_rows(outputs, dataset):
    key = references.PRIMARY_KEY[dataset]
    schema_duckdb, rows_duckdb = _table(outputs["root"] / "duckdb" / f"{dataset}.parquet", key)
    schema_pandas, rows_pandas = _table(outputs["root"] / "pandas" / f"{dataset}.parquet", key)
    assert schema_duckdb == schema_pandas
    columns = [name for name, _ in schema_duckdb]
    assert [r[columns.index(key)] for r in rows_duckdb] == [r[columns.index(key)] for r in rows_pandas]
    if "notes" in columns:
        notes = columns.index("notes")
        assert [r[notes] for r in rows_duckdb] == [r[notes] for r in rows_pandas]
    assert rows_duckdb == rows_pandas


def test_both_keep_the_rows_a_correct_pipeline_run_keeps(outputs):
    expected = {d: info["expected"]["rows_out"] for d, info in outputs["manifest"]["datasets"].items()}
    assert outputs["rows"]["duckdb"] == expected
    assert outputs["rows"]["pandas"] == expected


def test_free_text_pii_is_redacted(outputs):
    with duckdb.connect() as con:
        notes = con.sql(
            f"SELECT notes FROM read_parquet('{outputs['root'] / 'duckdb'}/*.parquet', union_by_name = true) "
            "WHERE notes IS NOT NULL"
        ).fetchall()
    text = [n for (n,) in notes]
    for placeholder in ("[USA_SSN]", "[EMAIL]", "[PHONE_NUMBER]"):
        assert any(placeholder in n for n in text), placeholder
    assert not [n for n in text if "@" in n or sum(c.isdigit() for c in n) >= 7]


def test_the_command_line_prints_the_rows_written(outputs, tmp_path):
    raw = outputs["root"] / "raw"
    script = REPO / "benchmarks" / "reference_transforms.py"
    done = subprocess.run(
        [sys.executable, str(script), "duckdb", "--raw", str(raw), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == {"rows_out": outputs["rows"]["duckdb"]}
