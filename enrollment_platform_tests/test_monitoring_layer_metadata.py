"""After two runs on generated data, every layer's materialization carries what an operator reads (counts,
reconciliation, DQ score, PII detections, file inventory, duration, schema, a PII-free preview), and the values
equal the run's own counts."""

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from enrollment_platform.settings import Settings

DAY_ONE, DAY_TWO = "2024-03-01", "2024-03-20"
LAYERS = ("raw", "standardized", "deduped", "validated", "redacted", "curated")


def _by_day(flat: Path, target: Path) -> Path:
    for folder in sorted(p for p in flat.iterdir() if p.is_dir()):
        for i, file in enumerate(sorted(p for p in folder.iterdir() if p.is_file())):
            destination = target / folder.name / f"ingest_date={DAY_ONE if i == 0 else DAY_TWO}" / file.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)
    return target


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two batch runs; per run: {(layer, dataset): metadata values} and the run's summary."""
    from enrollment_platform.generator import generate_raw_layer
    from enrollment_platform.runner import dagster_instance, execute_batch, summarize

    flat = tmp_path_factory.mktemp("flat")
    generate_raw_layer(flat, 300, seed=13)
    raw = _by_day(flat, tmp_path_factory.mktemp("raw"))
    settings = Settings.from_env(environ={}, home=str(tmp_path_factory.mktemp("home")), raw_uri=str(raw))
    runs = []
    for day in (DAY_ONE, DAY_TWO):
        result = execute_batch(settings, day, day)
        assert result.success
        summary = summarize(result, settings, str(raw))
        instance = dagster_instance(settings)
        events = instance.all_logs(result.run_id)
        values = {}
        for entry in events:
            event = entry.dagster_event
            if event is None or not event.is_step_materialization:
                continue
            materialization = event.step_materialization_data.materialization
            values[tuple(materialization.asset_key.path)] = {
                name: getattr(value, "value", value) for name, value in materialization.metadata.items()
            }
        runs.append((values, summary))
    return settings, runs, raw


def test_each_layer_carries_counts_equal_to_the_runs_counts(two_runs):
    _, runs, _ = two_runs
    for values, summary in runs:
        for dataset, counts in summary.datasets.items():
            raw, standardized = values[("raw", dataset)], values[("standardized", dataset)]
            deduped, validated = values[("deduped", dataset)], values[("validated", dataset)]
            redacted, curated = values[("redacted", dataset)], values[("curated", dataset)]
            assert raw["rows_in"] == standardized["rows"] == curated["rows_in"] == counts["rows_in"]
            assert deduped["rows_duplicate"] == curated["rows_duplicate"] == counts["rows_duplicate"]
            assert validated["rows_quarantined"] == curated["rows_quarantined"] == counts["rows_quarantined"]
            assert redacted["rows"] == validated["rows_kept"] == curated["rows_out"] == counts["rows_out"]
            assert curated["reconciled"] is True and validated["dq_score"] == counts["dq_score"]
            assert raw["files"] == counts["files"] and "inventory" in raw
            assert "pii_detections" in redacted and "pii_detections_total" in redacted
    assert sum(s.datasets["enrollments"]["rows_in"] for _, s in runs) > 0
    assert all(len(values) >= 6 * 4 for values, _ in runs)


def test_each_layer_carries_duration_schema_and_row_count(two_runs):
    settings, runs, _ = two_runs
    lake = Path(settings.lake_uri)
    for values, _ in runs:
        for (layer, dataset), metadata in values.items():
            if layer not in LAYERS:
                continue
            assert metadata["duration_seconds"] >= 0, (layer, dataset)
            if layer == "raw" and metadata["files"] == 0:  # nothing of this dataset arrived that day
                assert "dagster/column_schema" not in metadata
                continue
            schema = metadata["dagster/column_schema"]
            names = [c.name for c in schema.columns]
            if layer == "curated":
                assert names == pq.read_schema(lake / "curated" / dataset / f"{dataset}.parquet").names
                assert metadata["dagster/row_count"] == metadata["state_rows"]
            elif layer == "raw":
                assert metadata["dagster/row_count"] == metadata["rows_in"]
            elif layer in ("standardized", "deduped", "redacted"):
                assert metadata["dagster/row_count"] == metadata["rows"], (layer, dataset)
            assert ("preview" in metadata) == (layer in ("redacted", "curated")), (layer, dataset)


def test_previews_hold_no_raw_pii(two_runs):
    """The students' raw e-mail addresses and phone numbers never appear in any preview."""
    import duckdb

    settings, runs, _ = two_runs
    staged = sorted(str(p) for p in (Path(settings.lake_uri) / "staging" / "raw" / "students").glob("*.parquet"))
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT email, phone FROM read_parquet({staged!r}, union_by_name=true)").fetchall()
    secrets = {value for row in rows for value in row if value and len(value) > 5}
    assert secrets
    previews = [m["preview"] for values, _ in runs for m in values.values() if "preview" in m]
    assert len(previews) == 2 * 2 * 4
    assert not [s for s in secrets if any(s in preview for preview in previews)]
