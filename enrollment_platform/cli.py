"""The `enrollment-platform` command: generate data, run the pipeline, lint DQ rulesets."""

from __future__ import annotations

import atexit
import gc
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Student-enrollment data platform: raw layer -> curated lake -> star schema.", no_args_is_help=True
)
dq_app = typer.Typer(help="Data-quality rulesets (DQDL).", no_args_is_help=True)
app.add_typer(dq_app, name="dq")
pii_app = typer.Typer(help="PII detection (the detectors of config/pii_policy.yaml).", no_args_is_help=True)
app.add_typer(pii_app, name="pii")
console = Console(stderr=True)
_exit_collection_skipped = False


@contextmanager
def _pipeline_modules_loading() -> Iterator[None]:
    """Import the pipeline's modules (Dagster, pandera, polars, …) with the cyclic garbage collector paused, and
    skip its final pass at exit.

    Loading them creates about a million long-lived objects: the collector's full passes over them while they load
    (4-5, ~0.1 s each) free nothing, and so does its last pass when the interpreter exits (~1 s after a run), which
    only frees memory the process is about to hand back. Objects are still released (and closed) at exit as usual.
    """
    global _exit_collection_skipped
    if not _exit_collection_skipped:
        atexit.register(gc.freeze)  # runs at exit, before the interpreter's final collection
        _exit_collection_skipped = True
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@contextmanager
def _loaded_modules_frozen() -> Iterator[None]:
    """Keep the objects alive now (the loaded modules, ~1M of them) out of the collector's full passes while the
    pipeline runs (each would walk them all, ~0.15 s), then hand them back to it."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
    with _pipeline_modules_loading():
        from enrollment_platform.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(home=home, raw_uri=raw, engine=engine)
        with _pipeline_modules_loading():
            from enrollment_platform.runner import backfill, run_pipeline

        log_level = "DEBUG" if verbose else "WARNING"
        with _loaded_modules_frozen():
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


@app.command()
def status(
    home: Annotated[str | None, typer.Option(help="Working folder (default $ENROLLMENT_HOME or .enrollment).")] = None,
    raw: Annotated[str | None, typer.Option(help="Raw layer URI (default $ENROLLMENT_RAW_URI).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest runs to show.")] = 10,
) -> None:
    """The last runs (outcome, duration, rows in/out/quarantined/duplicate, DQ score), the asset checks failing now
    and the raw files not processed yet."""
    import warnings

    from enrollment_platform.settings import Settings, SettingsError

    with warnings.catch_warnings():  # Dagster's beta notices about the definitions are no news to a user
        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
        with _pipeline_modules_loading():
            from enrollment_platform.monitoring.status import (
                build_status,
                checks_table,
                datasets_table,
                pending_table,
                runs_table,
            )

        try:
            report = build_status(Settings.from_env(home=home, raw_uri=raw), limit)
        except SettingsError as error:
            console.print(f"[red]configuration error:[/red] {error}")
            raise typer.Exit(2) from error
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), default=str) + "\n")
        return
    out = Console()
    out.print(runs_table(report) if report.runs else f"no runs yet under {report.home}")
    if report.runs:
        out.print(datasets_table(report.runs[0]))
    out.print(checks_table(report) if report.failing_checks else "no failing asset checks")
    out.print(pending_table(report) if report.pending else f"no raw files pending under {report.raw_uri}")


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


@app.command()
def audit(
    home: Annotated[str | None, typer.Option(help="Working folder (default $ENROLLMENT_HOME or .enrollment).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as one JSON list on stdout.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest runs to show.")] = 10,
) -> None:
    """Recent runs from the audit log (<lake>/_audit/): who ran them, what they read and wrote, and the grants and
    revocations the access policy applied."""
    from enrollment_platform.resources.lake import LocalLake
    from enrollment_platform.security.audit import recent_runs
    from enrollment_platform.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(home=home)
    except SettingsError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from error
    runs = recent_runs(LocalLake(root=settings.lake_uri), limit)
    if as_json:
        sys.stdout.write(json.dumps(runs) + "\n")
    elif not runs:
        console.print(f"no audit records under {settings.lake_uri}/_audit")
    else:
        _print_audit(runs)


def _print_audit(runs: list[dict]) -> None:
    table = Table(title="recent runs (audit log)")
    for column in ("recorded_at", "run_id", "actor", "batch", "reads", "writes", "grants", "revokes"):
        table.add_column(column)
    for run in runs:
        kinds = [change["kind"] for change in run["access_changes"]]
        counts = (len(run["reads"]), len(run["writes"]), kinds.count("grant"), kinds.count("revoke"))
        table.add_row(
            run["recorded_at"],
            run["run_id"],
            f"{run['actor']} ({run['actor_source']})",
            run["batch"],
            *map(str, counts),
        )
    out = Console()
    out.print(table)
    for run in runs:
        for change in run["access_changes"]:
            line = f"{run['recorded_at']} {run['run_id'][:8]} {change['kind']:6} {change['detail']}: {change['object']}"
            out.print(line, markup=False, highlight=False)


@app.command("glue-package")
def glue_package(
    out: Annotated[Path, typer.Option(help="Folder for the wheel, the scripts and glue_manifest.json.")] = Path(
        "dist/glue"
    ),
    upload: Annotated[
        str | None,
        typer.Option(
            help="s3://BUCKET or s3://BUCKET/PREFIX to put every artifact in (the catalog stack reads the bucket root)."
        ),
    ] = None,
) -> None:
    """Build the Glue jobs' artifacts: the project wheel, glue_scripts/*.py and glue_manifest.json (their S3 keys
    and each job's --additional-python-modules); with --upload, put them in the bucket."""
    from enrollment_platform.packaging import PackagingError, S3Target, build_glue_package, upload_glue_package

    try:
        target = S3Target.parse(upload) if upload else None
        manifest = build_glue_package(out)
        if target:
            manifest = upload_glue_package(out, target)
    except PackagingError as error:
        console.print(f"[red]packaging error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
    lines = [
        f"wheel: {out / manifest['files'][manifest['wheel']]}",
        f"scripts: {', '.join(manifest['scripts'])} -> {out / 'glue_scripts'}",
        f"manifest: {out / 'glue_manifest.json'}",
        *([f"uploaded {len(manifest['files']) + 1} objects to {target.uri('')}"] if target else []),
        f"catalog stack parameter: ProjectWheelKey={manifest['wheel']}",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
