"""The DQ trend chart: pass rate (score) per rule over the last runs, drawn from the `dq_results` rows.

The lake's `dq_results/dataset=<d>/run_id=<run>/results.parquet` files hold the same rows as the warehouse table
`dq_results`, so `trend_query("dq_results")` on the warehouse gives the chart's data too. The PNG (matplotlib's Agg
canvas, no display needed) carries the points it plots as JSON in its `dq_trend` text chunk, so the picture can be
checked against the table: `read_chart_data(path)`.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from enrollment_platform.assets.common import markdown_table, read_parquet

log = logging.getLogger(__name__)

TREND_RUNS = 20  # how many of the latest runs the chart shows
TABLE_RUNS = 5  # how many of them the markdown table shows
CHART_KEY = "dq_trend"  # the PNG text chunk with the plotted points
RULE_LABEL_CHARS = 60
LABELS = re.compile(r"\s+labels=\[.*?\]")  # DQDL labels, left out of the legend


@dataclass(frozen=True)
class TrendPoint:
    """One rule's pass rate (share of evaluated rows passing, 0..1) in one run."""

    run_id: str
    run_at: datetime
    dataset: str
    rule_id: str
    rule: str
    pass_rate: float

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "dataset": self.dataset, "rule_id": self.rule_id, "pass_rate": self.pass_rate}


@dataclass(frozen=True)
class DQTrend:
    """A chart written to the lake: where, the points it plots, and the PNG bytes."""

    path: str
    points: list[TrendPoint]
    png: bytes

    @property
    def runs(self) -> list[str]:
        return list(dict.fromkeys(p.run_id for p in self.points))


def trend_query(source: str, runs: int = TREND_RUNS) -> str:
    """Per rule and run, the pass rate, for the last `runs` runs of `source` (the dq_results table or files);
    a run's time is its first evaluation. Rules without a score (Unsupported) are left out."""
    return (
        f"WITH results AS (SELECT * FROM {source}), "
        "runs AS (SELECT run_id, min(evaluated_at) AS run_at FROM results GROUP BY run_id "
        f"ORDER BY run_at DESC, run_id LIMIT {int(runs)}) "
        "SELECT r.run_id, runs.run_at, r.dataset, r.rule_id, r.rule, r.score "
        "FROM results r JOIN runs ON r.run_id = runs.run_id WHERE r.score IS NOT NULL "
        "ORDER BY runs.run_at, r.run_id, r.dataset, r.rule_id"
    )


def result_files(lake) -> list[str]:
    return [f for f in lake.list("dq_results") if Path(f).name == "results.parquet"]


def trend_points(lake, runs: int = TREND_RUNS) -> list[TrendPoint]:
    """The chart's data from the lake's dq_results files."""
    files = result_files(lake)
    if not files:
        return []
    with duckdb.connect() as con:
        rows = con.execute(trend_query(read_parquet(files), runs)).fetchall()
    return [TrendPoint(*row) for row in rows]


def _run_label(point: TrendPoint) -> str:
    return f"{point.run_at:%m-%d %H:%M}\n{point.run_id[:8]}"


def _rule_label(point: TrendPoint) -> str:
    """`R4  ColumnValues "marks" <= 100`: the rule's id within its dataset and its text without labels."""
    text = LABELS.sub("", point.rule).strip()
    text = text if len(text) <= RULE_LABEL_CHARS else text[: RULE_LABEL_CHARS - 1] + "…"
    return f"{point.rule_id.split('.', 1)[-1]}  {text}"


def _by_rule(points: list[TrendPoint]) -> dict[str, list[TrendPoint]]:
    by_rule: dict[str, list[TrendPoint]] = defaultdict(list)
    for point in points:
        by_rule[point.rule_id].append(point)
    return by_rule


def draw_dataset(axis, dataset: str, points: list[TrendPoint], position: dict[str, int]) -> None:
    """One line per rule that fell below 100% in some run; the rules that never did share one grey line."""
    from matplotlib.ticker import PercentFormatter

    by_rule = _by_rule(points)
    perfect = [rule for rule, series in by_rule.items() if all(p.pass_rate == 1.0 for p in series)]
    for rule, series in by_rule.items():
        if rule not in perfect:
            xs, ys = [position[p.run_id] for p in series], [p.pass_rate * 100 for p in series]
            axis.plot(xs, ys, marker="o", markersize=4, linewidth=1.5, label=_rule_label(series[0]))
    if perfect:
        runs = sorted({position[p.run_id] for rule in perfect for p in by_rule[rule]})
        label = f"{len(perfect)} other rules: 100% in every run"
        axis.plot(runs, [100.0] * len(runs), color="0.6", marker="o", markersize=3, linewidth=1, label=label)
    lowest = min(p.pass_rate for p in points) * 100
    axis.set_ylim(max(0.0, lowest - max(0.5, (100 - lowest) * 0.15)), 100 + max(0.1, (100 - lowest) * 0.05))
    axis.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    axis.set_title(dataset, loc="left", fontsize=10, fontweight="bold")
    axis.grid(True, alpha=0.3)
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)


def render_png(points: list[TrendPoint], dpi: int = 80) -> bytes:
    """The chart as PNG bytes (Agg canvas): one panel per dataset, runs oldest to newest; the PNG's `dq_trend`
    text chunk holds every point (rule, run, pass rate) as JSON."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = sorted({p.dataset for p in points})
    runs = list(dict.fromkeys(p.run_id for p in points))
    position = {run: i for i, run in enumerate(runs)}
    figure = Figure(figsize=(12, 2.2 * max(1, len(datasets)) + 0.8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(max(1, len(datasets)), 1, sharex=True, squeeze=False)[:, 0]
    for axis, dataset in zip(axes, datasets, strict=False):
        draw_dataset(axis, dataset, [p for p in points if p.dataset == dataset], position)
    labels = {p.run_id: _run_label(p) for p in points}
    axes[-1].set_xticks(range(len(runs)), [labels[r] for r in runs], fontsize=7)
    axes[-1].set_xlim(-0.5, max(len(runs) - 0.5, 0.5))
    last = "the last run" if len(runs) == 1 else f"the last {len(runs)} runs"
    figure.suptitle(f"DQ pass rate per rule, {last} (from dq_results)", fontsize=12)
    buffer = io.BytesIO()
    data = json.dumps([p.to_dict() for p in points], separators=(",", ":"))
    figure.savefig(buffer, format="png", metadata={CHART_KEY: data})
    return buffer.getvalue()


def read_chart_data(png: str | bytes) -> list[dict]:
    """The points a chart PNG says it plots (its `dq_trend` text chunk)."""
    from PIL import Image

    source = io.BytesIO(png) if isinstance(png, bytes) else png
    with Image.open(source) as image:
        return json.loads(image.text[CHART_KEY])


def chart_parts(run_id: str) -> list[str]:
    return ["monitoring", "dq_trend", f"run_id={run_id}", "dq_trend.png"]


def write_trend(lake, run_id: str, runs: int = TREND_RUNS) -> DQTrend:
    """Draw the trend of the last runs and write it to the lake, named after the run that drew it."""
    points = trend_points(lake, runs)
    png = render_png(points)
    with lake.atomic_write(*chart_parts(run_id)) as temporary:
        Path(temporary).write_bytes(png)
    return DQTrend(lake.path(*chart_parts(run_id)), points, png)


def _pass_rate_table(trend: DQTrend) -> str:
    """Markdown: one row per rule, the pass rate in each of the last TABLE_RUNS runs."""
    shown = trend.runs[-TABLE_RUNS:]
    rows: dict[str, dict] = {}
    for point in (p for p in trend.points if p.run_id in shown):
        row = rows.setdefault(point.rule_id, {"rule_id": point.rule_id, "rule": point.rule[:RULE_LABEL_CHARS]})
        row[point.run_id[:8]] = f"{point.pass_rate:.2%}"
    return markdown_table(list(rows.values()), ["rule_id", "rule", *(r[:8] for r in shown)], limit=100)


def trend_metadata(trend: DQTrend) -> dict:
    """Asset metadata: the lake path, the picture itself (a data URI the UI shows) and the last runs as a table."""
    image = base64.b64encode(trend.png).decode()
    return {
        "dq_trend_path": dg.MetadataValue.path(trend.path),
        "dq_trend": dg.MetadataValue.md(f"![DQ pass rate per rule, last runs](data:image/png;base64,{image})"),
        "dq_trend_table": dg.MetadataValue.md(_pass_rate_table(trend)),
        "dq_trend_runs": dg.MetadataValue.int(len(trend.runs)),
        "dq_trend_query": dg.MetadataValue.md(f"```sql\n{trend_query('dq_results')}\n```"),
    }


def dq_trend_metadata(lake, run_id: str) -> dict:
    """`trend_metadata` for the chart drawn now; a drawing error is logged and noted, never fails the load."""
    try:
        return trend_metadata(write_trend(lake, run_id))
    except Exception as error:  # the chart is a view of rows already loaded: it must not undo the load
        log.warning("the DQ trend chart could not be drawn: %s", error)
        return {"dq_trend_error": dg.MetadataValue.text(f"{type(error).__name__}: {error}")}
