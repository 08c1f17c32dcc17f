"""`enrollment-platform status`: two runs made with the CLI on a generated raw layer, then a raw file added but not
processed; status reports both runs (outcome, duration, counts, DQ score, failing checks) and the pending file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enrollment_platform.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
COUNTED = ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate", "dq_score")


def invoke_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def place(source: Path, raw: Path, dataset: str, day: str) -> None:
    """Put one generated file into the raw layer under an ingestion-date folder."""
    target = raw / dataset / f"ingest_date={day}" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


@pytest.fixture(scope="module")
def two_cli_runs(tmp_path_factory):
    """`generate`, then `run` on the dimensions and one enrollments file, then `run` on the other enrollment files,
    then a students file added: (home, first summary, second summary, the added file)."""
    base = tmp_path_factory.mktemp("status")
    generated, home = base / "generated", base / "home"
    result = runner.invoke(app, ["generate", "--out", str(generated), "--enrollments", "300", "--seed", "3"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((generated / "_manifest.json").read_text())
    raw = home / "raw_layer"  # the default raw layer of --home
    first, *later = manifest["datasets"]["enrollments"]["files"]
    for dataset in ("students", "courses", "instructors"):
        for relative in manifest["datasets"][dataset]["files"]:
            place(generated / relative, raw, dataset, "2024-09-01")
    place(generated / first, raw, "enrollments", "2024-09-01")
    summaries = [invoke_json("run", "--home", str(home))]
    for relative in later:
        place(generated / relative, raw, "enrollments", "2024-09-02")
    summaries.append(invoke_json("run", "--home", str(home)))
    students = generated / manifest["datasets"]["students"]["files"][0]
    added = raw / "students" / "ingest_date=2024-09-05" / "late.csv"
    added.parent.mkdir(parents=True)
    added.write_text("".join(students.read_text().splitlines(keepends=True)[:4]))
    return home, summaries, added


@pytest.fixture(scope="module")
def status(two_cli_runs) -> dict:
    home, _, _ = two_cli_runs
    return invoke_json("status", "--home", str(home))


def test_status_reports_the_runs_just_made_newest_first(two_cli_runs, status):
    _, summaries, _ = two_cli_runs
    assert all(s["success"] and not s["nothing_new"] for s in summaries)
    assert [r["run_id"] for r in status["runs"]] == [s["run_id"] for s in reversed(summaries)]
    assert [r["batch"] for r in status["runs"]] == ["2024-09-02", "2024-09-01"]
    for run, summary in zip(status["runs"], reversed(summaries), strict=True):
        assert run["status"] == "SUCCESS" and run["trigger"] == "cli" and not run["failed_steps"]
        assert run["started_at"] < run["ended_at"] and run["duration_s"] > 0
        expected = {d: {k: v[k] for k in COUNTED if k in v} for d, v in summary["datasets"].items()}
        assert run["datasets"] == expected
    assert status["runs"][1]["datasets"]["enrollments"]["rows_in"] > 0  # the first enrollments file, first run


def test_status_reports_the_checks_whose_latest_evaluation_failed(two_cli_runs, status):
    _, summaries, _ = two_cli_runs
    latest = {(c["asset"], c["check"]): c for s in summaries for c in s["checks"]}  # the second run's win
    failing = {key for key, check in latest.items() if not check["passed"]}
    assert failing, "the generated defects make a check fail (near-duplicate instructors)"
    assert {(c["asset"], c["check"]) for c in status["failing_checks"]} == failing
    for run, summary in zip(status["runs"], reversed(summaries), strict=True):
        expected = {(c["asset"], c["check"], c["severity"]) for c in summary["checks"] if not c["passed"]}
        assert {(c["asset"], c["check"], c["severity"]) for c in run["failed_checks"]} == expected


def test_status_lists_the_raw_file_added_since(two_cli_runs, status):
    home, _, added = two_cli_runs
    relative = added.relative_to(home / "raw_layer").as_posix()
    assert status["pending_files"] == [
        {"dataset": "students", "relative": relative, "ingest_date": "2024-09-05", "size_bytes": added.stat().st_size}
    ]
    assert status["pending_dates"] == ["2024-09-05"]


def test_status_limit_and_the_readable_tables(two_cli_runs):
    home, summaries, added = two_cli_runs
    assert [r["run_id"] for r in invoke_json("status", "--home", str(home), "--limit", "1")["runs"]] == [
        summaries[-1]["run_id"]
    ]
    result = runner.invoke(app, ["status", "--home", str(home)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for summary in summaries:
        assert summary["run_id"][:8] in result.stdout
    assert added.name in result.stdout and "SUCCESS" in result.stdout


def test_status_of_an_empty_home_says_so(tmp_path):
    empty = tmp_path / "home"
    (empty / "raw_layer" / "students").mkdir(parents=True)
    (empty / "raw_layer" / "students" / "s.csv").write_text("student_id,first_name\ns1,Ada\n")
    report = invoke_json("status", "--home", str(empty))
    assert report["runs"] == [] and report["failing_checks"] == []
    assert [p["relative"] for p in report["pending_files"]] == ["students/s.csv"]
    result = runner.invoke(app, ["status", "--home", str(empty)])
    assert result.exit_code == 0 and "no runs yet" in result.stdout
