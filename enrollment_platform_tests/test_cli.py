"""The `enrollment-platform` command as users and CI call it."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from enrollment_platform.cli import app

runner = CliRunner()
RULES = Path(__file__).resolve().parents[1] / "enrollment_platform" / "config" / "rules"


def test_generate_then_run_json_reports_the_manifest_counts(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    result = runner.invoke(app, ["generate", "--out", str(raw), "--enrollments", "300", "--seed", "3"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((raw / "_manifest.json").read_text())
    monkeypatch.delenv("ENROLLMENT_RAW_URI", raising=False)
    monkeypatch.delenv("ENROLLMENT_LAKE_URI", raising=False)
    monkeypatch.delenv("ENROLLMENT_WAREHOUSE_URL", raising=False)
    result = runner.invoke(app, ["run", "--raw", str(raw), "--home", str(tmp_path / "home"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["success"] is True
    for dataset, info in manifest["datasets"].items():
        got = {k: summary["datasets"][dataset][k] for k in info["expected"]}
        assert got == info["expected"]
    assert (tmp_path / "home" / "warehouse.duckdb").exists()


def test_run_with_a_bad_setting_exits_2_with_the_variable_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ENROLLMENT_ENV", "moon")
    result = runner.invoke(app, ["run", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "ENROLLMENT_ENV='moon'" in result.output


def test_run_with_an_unavailable_engine_exits_2(tmp_path, monkeypatch):
    monkeypatch.delenv("ENROLLMENT_ENV", raising=False)
    result = runner.invoke(app, ["run", "--home", str(tmp_path), "--engine", "flink"])
    assert result.exit_code == 2 and "ENROLLMENT_ENGINE='flink'" in result.output


def test_dq_lint_passes_the_packaged_rulesets():
    result = runner.invoke(app, ["dq", "lint", *map(str, sorted(RULES.glob("*.dqdl")))])
    assert result.exit_code == 0, result.output


def test_dq_lint_reports_file_line_column(tmp_path):
    bad = tmp_path / "bad.dqdl"
    bad.write_text('Rules = [\n    IsComplete "a",\n    ColumnValues "b" >= \n]')
    result = runner.invoke(app, ["dq", "lint", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{bad}:4:1: ")


def test_dq_export_prints_dqdl_that_parses_again():
    from enrollment_platform.quality.dqdl import parse_ruleset

    result = runner.invoke(app, ["dq", "export", "enrollments"])
    assert result.exit_code == 0
    assert len(parse_ruleset(result.output).rules) == 9


def test_installed_entry_point_runs_on_the_bundled_sample(tmp_path):
    """No raw data configured: the installed command runs on the sample shipped in the package."""
    command = Path(sys.executable).with_name("enrollment-platform")
    env = {"PATH": str(command.parent), "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(command), "run", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["raw_uri"].endswith("sample_data/raw")
    assert summary["warehouse"]["enrollment_fact"]["rows"] == summary["datasets"]["enrollments"]["rows_out"] > 0
    assert (tmp_path / ".enrollment" / "warehouse.duckdb").exists()


def test_run_backfills_a_range_of_ingestion_dates(tmp_path, original_raw):
    import shutil

    raw = tmp_path / "raw"
    for dataset, day in (
        ("student", "2024-09-01"),
        ("courses", "2024-09-01"),
        ("instructor", "2024-09-01"),
        ("enrollment", "2024-09-02"),
    ):
        shutil.copytree(original_raw / dataset, raw / dataset / f"ingest_date={day}")
    home = str(tmp_path / "home")
    first = runner.invoke(app, ["run", "--raw", str(raw), "--home", home, "--json", "--from", "2024-09-01"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["datasets"]["students"]["rows_in"] == 55 and summary["datasets"]["enrollments"]["rows_in"] == 0
    second = runner.invoke(
        app, ["run", "--raw", str(raw), "--home", home, "--json", "--from", "2024-09-01", "--to", "2024-09-02"]
    )
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert summary["datasets"]["students"]["rows_in"] == 0  # already processed: skipped
    assert (summary["datasets"]["enrollments"]["rows_in"], summary["datasets"]["enrollments"]["rows_out"]) == (140, 125)
    bad = runner.invoke(app, ["run", "--raw", str(raw), "--home", home, "--from", "2024-13-01"])
    assert bad.exit_code == 2 and "is not a date" in bad.output
