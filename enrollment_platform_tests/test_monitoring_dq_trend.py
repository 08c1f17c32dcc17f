"""The DQ trend chart on `warehouse/dq_results`: a PNG in the lake, attached to the asset, whose data is the
`dq_results` table (two batches of a small generated raw layer, so the chart has two runs)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import dagster as dg
import pytest
from matplotlib.figure import Figure
from PIL import Image

from enrollment_platform.monitoring.dq_trend import (
    draw_dataset,
    read_chart_data,
    trend_points,
    trend_query,
)
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import DuckDBWarehouse, duckdb_path
from enrollment_platform.runner import dagster_instance, run_pipeline
from enrollment_platform_tests.conftest import local_settings

pytestmark = pytest.mark.slow
DQ_RESULTS = dg.AssetKey(["warehouse", "dq_results"])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Dimensions and the first enrollments file on 2024-09-01, the other enrollment files on 2024-09-03: two
    batches, so one `run_pipeline` makes two runs. Returns (settings, summary)."""
    from enrollment_platform.generator import generate_raw_layer

    generated = tmp_path_factory.mktemp("generated")
    manifest = generate_raw_layer(generated, 300, seed=5)
    raw = tmp_path_factory.mktemp("raw")
    first, *later = manifest["datasets"]["enrollments"]["files"]
    for dataset in ("students", "courses", "instructors"):
        shutil.copytree(generated / dataset, raw / dataset / "ingest_date=2024-09-01")
    for relative, day in [(first, "2024-09-01"), *((f, "2024-09-03") for f in later)]:
        target = raw / "enrollments" / f"ingest_date={day}" / Path(relative).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(generated / relative, target)
    settings = local_settings(tmp_path_factory.mktemp("home"), raw)
    summary = run_pipeline(settings)
    assert summary.success, summary.failures
    assert len(summary.run_ids) == 2
    return settings, summary


def latest_dq_metadata(settings) -> dict:
    instance = dagster_instance(settings)
    record = instance.fetch_materializations(DQ_RESULTS, limit=1).records[0]
    return {name: value.value for name, value in record.asset_materialization.metadata.items()}


def warehouse_of(settings) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=duckdb_path(settings.warehouse_url))


def test_the_dq_asset_carries_a_png_whose_data_is_the_dq_results_table(two_runs):
    settings, summary = two_runs
    metadata = latest_dq_metadata(settings)
    path = Path(metadata["dq_trend_path"])
    assert path.is_relative_to(Path(settings.lake_uri)) and path.parent.name == f"run_id={summary.run_ids[-1]}"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
    plotted = sorted((p["run_id"], p["dataset"], p["rule_id"], p["pass_rate"]) for p in read_chart_data(str(path)))
    table = warehouse_of(settings).query(
        "SELECT run_id, dataset, rule_id, score FROM dq_results WHERE score IS NOT NULL ORDER BY 1, 2, 3"
    )
    assert plotted == sorted(table)
    assert {p[0] for p in plotted} == set(summary.run_ids)
    assert metadata["dq_trend_runs"] == len(summary.run_ids)
    image_markdown = metadata["dq_trend"]
    assert image_markdown.startswith("![") and base64.b64encode(path.read_bytes()).decode() in image_markdown


def test_the_chart_query_on_the_warehouse_table_gives_the_lake_points(two_runs):
    settings, _ = two_runs
    from_lake = [
        (p.run_id, p.dataset, p.rule_id, p.rule, p.pass_rate) for p in trend_points(LocalLake(root=settings.lake_uri))
    ]
    from_table = [row[:1] + row[2:] for row in warehouse_of(settings).query(trend_query("dq_results"))]
    assert from_lake == from_table


def test_the_chart_shows_the_last_runs_only(two_runs):
    settings, summary = two_runs
    points = trend_points(LocalLake(root=settings.lake_uri), runs=1)
    assert {p.run_id for p in points} == {summary.run_ids[-1]}


def test_each_rule_below_100_percent_is_drawn_at_its_pass_rates(two_runs):
    settings, summary = two_runs
    points = [p for p in trend_points(LocalLake(root=settings.lake_uri)) if p.dataset == "enrollments"]
    position = {run: i for i, run in enumerate(summary.run_ids)}
    axis = Figure().subplots()
    draw_dataset(axis, "enrollments", points, position)
    drawn = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines()}
    imperfect = {p.rule_id for p in points if p.pass_rate < 1}
    assert imperfect, "the generated defects make some enrollment rule fail"
    for rule_id in imperfect:
        label = next(name for name in drawn if name.startswith(rule_id.split(".", 1)[1] + " "))
        series = [p for p in points if p.rule_id == rule_id]
        assert drawn[label][0] == [position[p.run_id] for p in series]
        assert drawn[label][1] == pytest.approx([p.pass_rate * 100 for p in series])
    perfect = {p.rule_id for p in points} - imperfect
    assert f"{len(perfect)} other rules: 100% in every run" in drawn
