"""The `enrollment-platform` command: generate data, run the pipeline, lint DQ rulesets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Student-enrollment data platform: raw layer -> curated lake -> star schema.", no_args_is_help=True
)
dq_app = typer.Typer(help="Data-quality rulesets (DQDL).", no_args_is_help=True)
app.add_typer(dq_app, name="dq")
pii_app = typer.Typer(help="PII detection (the detectors of config/pii_policy.yaml).", no_args_is_help=True)
app.add_typer(pii_app, name="pii")
console = Console(stderr=True)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write the raw layer into.")],
    enrollments: Annotated[int, typer.Option(min=1, help="How many enrollment rows (before defects).")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same bytes.")] = 0,
) -> None:
    """Write a realistic raw layer with seeded defects and a manifest of what was injected."""
    from enrollment_platform.generator import generate_raw_layer

    manifest = generate_raw_layer(out, enrollments, seed=seed)
    for dataset, info in manifest["datasets"].items():
        console.print(f"{dataset}: {info['expected']['rows_in']} rows -> {out / dataset}")
    console.print(f"manifest: {out / '_manifest.json'}")


@app.command()
def run(
    raw: Annotated[str | None, typer.Option(help="Raw layer URI (default $ENROLLMENT_RAW_URI).")] = None,
    home: Annotated[str | None, typer.Option(help="Working folder (default $ENROLLMENT_HOME or .enrollment).")] = None,
    engine: Annotated[str | None, typer.Option(help="local (DuckDB, in-process) or spark.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Dagster's step-by-step log.")] = False,
    from_date: Annotated[
        str | None, typer.Option("--from", help="Backfill: first ingestion date (YYYY-MM-DD) of one batch.")
    ] = None,
    to_date: Annotated[
        str | None, typer.Option("--to", help="Backfill: last ingestion date (default: --from).")
    ] = None,
) -> None:
    """Materialize every asset in-process for the raw files not yet processed (or, with --from/--to, for the
    unprocessed files of those ingestion dates, as one batch); exit 1 when the run fails."""
    from enrollment_platform.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(home=home, raw_uri=raw, engine=engine)
        from enrollment_platform.runner import backfill, run_pipeline

        log_level = "DEBUG" if verbose else "WARNING"
        if from_date:
            summary = backfill(settings, from_date, to_date or from_date, log_level=log_level)
        else:
            summary = run_pipeline(settings, log_level=log_level)
    except SettingsError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from error
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), default=str) + "\n")
    else:
        _print_summary(summary)
    if not summary.success:
        raise typer.Exit(1)


def _print_summary(summary) -> None:
    table = Table(title=f"run {summary.run_id} ({'success' if summary.success else 'FAILED'})")
    for column in ("dataset", "rows_in", "rows_out", "rows_quarantined", "rows_duplicate", "reconciled"):
        table.add_column(column)
    for dataset, counts in summary.datasets.items():
        table.add_row(
            dataset,
            *(
                str(counts.get(c, ""))
                for c in ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate", "reconciled")
            ),
        )
    Console().print(table)
    for failure in summary.failures:
        console.print(f"[red]{failure}[/red]")


@dq_app.command("lint")
def dq_lint(files: Annotated[list[Path], typer.Argument(help="DQDL ruleset files.")]) -> None:
    """Exit 0 when every ruleset parses and is valid; else print FILE:LINE:COL: message and exit 1."""
    from enrollment_platform.quality.dqdl import lint_files

    errors = lint_files([str(f) for f in files])
    for error in errors:
        typer.echo(error)
    if errors:
        raise typer.Exit(1)


@dq_app.command("export")
def dq_export(dataset: Annotated[str, typer.Argument(help="Dataset whose ruleset to print.")]) -> None:
    """Print a dataset's ruleset as plain DQDL for AWS Glue Data Quality."""
    from enrollment_platform.config import load_catalog, ruleset_text
    from enrollment_platform.quality.dqdl import parse_ruleset, to_dqdl

    if dataset not in load_catalog().datasets:
        console.print(f"unknown dataset {dataset!r}; known: {', '.join(load_catalog().datasets)}")
        raise typer.Exit(2)
    typer.echo(to_dqdl(parse_ruleset(ruleset_text(dataset), source=f"rules/{dataset}.dqdl")))


@pii_app.command("detect")
def pii_detect() -> None:
    """Read text lines on stdin; write one JSON object per line: {"spans": [{"entity", "start", "end"}, ...]}.

    Lines end at "\\n" (a "\\r" before it is dropped; a lone "\\r" stays part of the line). Offsets are Python
    character offsets into the line without its ending, end exclusive; entity names are AWS Glue's (USA_SSN,
    EMAIL, PHONE_NUMBER, CREDIT_CARD, IP_ADDRESS, DATE, ...).
    """
    import io

    from enrollment_platform.pii.detectors import default_detector

    detector = default_detector()
    lines = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="\n")
    for line in lines:
        text = line.removesuffix("\n").removesuffix("\r")
        spans = [span.to_dict() for span in detector.find(text)]
        sys.stdout.write(json.dumps({"spans": spans}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    app()
