"""Data quality in real Dagster runs: blocking checks stop downstream assets, results land in lake and warehouse."""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from enrollment_platform.config import ruleset_text
from enrollment_platform.quality.rules import all_dataset_rules, build_rules
from enrollment_platform.resources.warehouse import duckdb_path
from enrollment_platform.runner import dagster_instance, execute_batch, pending_range
from enrollment_platform_tests.conftest import local_settings

pytestmark = pytest.mark.slow


def run_with_extra_enrollment_rule(original_raw, home: Path, rule: str) -> dg.ExecuteInProcessResult:
    text = ruleset_text("enrollments").rstrip().removesuffix("]") + f",\n    {rule}\n]"
    rules = {**all_dataset_rules(), "enrollments": tuple(build_rules("enrollments", text))}
    settings = local_settings(home, original_raw)
    return execute_batch(settings, *pending_range(settings), rules_by_dataset=rules)


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {"/".join(e.materialization.asset_key.path) for e in result.get_asset_materialization_events()}


def check_outcome(result: dg.ExecuteInProcessResult, check: str) -> bool:
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and event.event_specific_data.check_name == check:
            return event.event_specific_data.passed
    raise AssertionError(f"check {check} was not evaluated")


def test_a_failing_blocking_rule_stops_every_downstream_asset(original_raw, tmp_path):
    result = run_with_extra_enrollment_rule(original_raw, tmp_path, 'RowCount > 1000000 labels=["severity"="blocking"]')
    assert check_outcome(result, "r10_rowcount") is False
    done = materialized(result)
    assert "validated/enrollments" in done
    assert not {"redacted/enrollments", "curated/enrollments", "warehouse/enrollment_fact"} & done
    assert {"curated/students", "warehouse/student_dim"} <= done  # other datasets carry on


def test_a_failing_warn_rule_does_not_stop_anything(original_raw, tmp_path):
    result = run_with_extra_enrollment_rule(original_raw, tmp_path, 'RowCount > 1000000 labels=["severity"="warn"]')
    assert result.success
    assert check_outcome(result, "r10_rowcount") is False
    assert {"curated/enrollments", "warehouse/enrollment_fact", "warehouse/dq_results"} <= materialized(result)


def test_dq_results_hold_one_row_per_rule_with_counts_matching_the_quarantine(generated_run):
    settings, summary, _ = generated_run
    lake = Path(settings.lake_uri)
    quarantine = lake / "quarantine" / "enrollments" / "*" / "rows-*.parquet"
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        rows = con.execute(
            "SELECT rule_id, rule, severity, failed FROM dq_results WHERE run_id = ? AND dataset = 'enrollments'",
            [summary.run_id],
        ).fetchall()
    rules = all_dataset_rules()["enrollments"]
    assert {r.rule_id for r in rules} <= {row[0] for row in rows}
    for rule_id, rule, severity, failed in rows:
        if severity != "blocking" or rule_id.endswith(".load"):
            continue
        reason = rule if "." in rule_id and not rule_id.split(".")[1].startswith("type") else None
        if reason is None:
            reason = f"{rule_id.split('.')[-1]}: value is not a valid"
            in_quarantine = duckdb.execute(
                f"SELECT count(*) FROM read_parquet('{quarantine}') "
                "WHERE len(list_filter(DataQualityRulesFail, lambda r: starts_with(r, ?))) > 0",
                [reason],
            ).fetchone()[0]
        else:
            in_quarantine = duckdb.execute(
                f"SELECT count(*) FROM read_parquet('{quarantine}') WHERE list_contains(DataQualityRulesFail, ?)",
                [reason],
            ).fetchone()[0]
        assert failed == in_quarantine, rule
    lake_rows = duckdb.execute(
        f"SELECT count(*) FROM read_parquet('{lake}/dq_results/dataset=enrollments/run_id={summary.run_id}/*.parquet')"
    ).fetchone()[0]
    assert lake_rows == len(rows)


def test_boundary_marks_and_attendance_pass(generated_run):
    settings, _, manifest = generated_run
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        boundary = con.execute(
            "SELECT count(*) FROM enrollment_fact WHERE marks IN (0, 100) OR attendance_percentage IN (0, 100)"
        ).fetchone()[0]
    assert boundary == manifest["datasets"]["enrollments"]["defects"]["boundary_values"] > 0


def test_near_duplicate_instructors_of_the_original_data_are_reported(original_run):
    settings, summary = original_run
    near = [
        c for c in summary.checks if c["asset"] == "curated/instructors" and c["check"] == "near_duplicate_entities"
    ]
    assert near == [
        {"asset": "curated/instructors", "check": "near_duplicate_entities", "passed": False, "severity": "WARN"}
    ]
    instance = dagster_instance(settings)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["curated", "instructors"]), "near_duplicate_entities")]
    )
    evaluation = next(iter(record.values())).event.dagster_event.event_specific_data
    groups = evaluation.metadata["sample_id_groups"].value
    assert groups == [["201", "221"], ["202", "222"], ["203", "223"], ["204", "224"], ["205", "225"]]
