"""What keeps a run's fixed cost down stays correct: cached partition keys, the pooled event log, the per-asset
health check step and the columns the rule checks read."""

from __future__ import annotations

import subprocess
import sys
from contextlib import nullcontext
from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest

from enrollment_platform.partitions import PARTITIONS_START, ingest_date_partitions
from enrollment_platform.quality.asset_checks import build_curated_health_checks
from enrollment_platform.quality.dqdl import parse_ruleset
from enrollment_platform.quality.polars_rules import reference_columns
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse.embedded import DuckDBWarehouse
from enrollment_platform.resources.warehouse.postgres import PostgresWarehouse
from enrollment_platform.runner import PooledSqliteEventLogStorage, dagster_instance, warehouse_held_open
from enrollment_platform.settings import Settings

PLAIN = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)


def test_cached_partition_keys_are_dagster_s_enumeration():
    assert ingest_date_partitions.get_partition_keys() == PLAIN.get_partition_keys()
    assert ingest_date_partitions.get_partition_keys() == PLAIN.get_partition_keys()  # from the cache
    earlier = datetime(2024, 3, 1, tzinfo=UTC)
    assert ingest_date_partitions.get_partition_keys(current_time=earlier) == PLAIN.get_partition_keys(earlier)
    with dg.partition_loading_context(earlier):
        assert ingest_date_partitions.get_partition_keys()[-1] == "2024-03-01"
    assert ingest_date_partitions.get_partition_keys()[-1] == PLAIN.get_last_partition_key()


def test_the_partitions_definition_itself_is_unchanged():
    assert ingest_date_partitions == PLAIN and hash(ingest_date_partitions) == hash(PLAIN)
    assert type(ingest_date_partitions) is dg.DailyPartitionsDefinition


@dg.asset(partitions_def=ingest_date_partitions)
def counted() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset_check(asset=counted)
def counted_has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def test_the_pooled_event_log_writes_what_a_plain_instance_reads(tmp_path):
    settings = Settings.from_env(environ={}, home=str(tmp_path))
    job = dg.Definitions(assets=[counted], asset_checks=[counted_has_rows]).resolve_implicit_global_asset_job_def()
    with dagster_instance(settings) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        runs = [
            job.execute_in_process(instance=instance, partition_key=day).run_id for day in ("2024-01-01", "2024-01-02")
        ]
    plain = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))  # what `dagster dev` opens
    assert type(plain.event_log_storage).__name__ == "SqliteEventLogStorage"
    assert {r.run_id for r in plain.get_runs()} == set(runs)
    records = plain.fetch_materializations(counted.key, limit=5).records
    assert [r.partition_key for r in records] == ["2024-01-02", "2024-01-01"]
    evaluations = [
        e for e in plain.all_logs(runs[1]) if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert [e.dagster_event.event_specific_data.passed for e in evaluations] == [True]


def test_a_configured_storage_is_used_as_configured(tmp_path):
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text(
        "event_log_storage:\n"
        "  module: dagster._core.storage.event_log\n"
        "  class: ConsolidatedSqliteEventLogStorage\n"
        f"  config:\n    base_dir: {tmp_path / 'events'}\n"
    )
    instance = dagster_instance(Settings.from_env(environ={}, home=str(tmp_path)))
    assert type(instance.event_log_storage).__name__ == "ConsolidatedSqliteEventLogStorage"


CURATED = dg.AssetKey(["curated", "instructors"])


def run_health_checks(tmp_path, checks: dg.AssetChecksDefinition, names: list[str]) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job(
        "health", selection=dg.AssetSelection.checks(*(dg.AssetCheckKey(CURATED, n) for n in names))
    )
    defs = dg.Definitions(
        assets=[dg.AssetSpec(CURATED)],
        asset_checks=[checks],
        jobs=[job],
        resources={"lake": LocalLake(root=str(tmp_path))},
    )
    return defs.resolve_job_def("health").execute_in_process(raise_on_error=False)


def evaluated(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_the_curated_health_checks_share_one_step_and_run_alone_when_selected(tmp_path):
    checks = build_curated_health_checks("instructors", 0.5, ["first_name", "last_name"])
    assert {key.name for key in checks.check_keys} == {"near_duplicate_entities", "row_count_drop"}
    assert not any(spec.blocking for spec in checks.check_specs)
    both = run_health_checks(tmp_path, checks, ["near_duplicate_entities", "row_count_drop"])
    assert both.success and evaluated(both) == {"near_duplicate_entities": True, "row_count_drop": True}
    alone = run_health_checks(tmp_path, checks, ["row_count_drop"])
    assert alone.success and evaluated(alone) == {"row_count_drop": True}


def test_a_health_check_that_raises_fails_the_step_after_the_other_reports(tmp_path):
    checks = build_curated_health_checks("instructors", 0.5, ["no_such_column"])
    result = run_health_checks(tmp_path, checks, ["near_duplicate_entities", "row_count_drop"])
    assert not result.success
    assert evaluated(result) == {"row_count_drop": True}
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "no_such_column" in failure.step_failure_data.error.cause.message


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ('Rules = [ ReferentialIntegrity "student_id" "students.student_id" = 1.0 ]', {"students": ["student_id"]}),
        (
            'Rules = [ (ReferentialIntegrity "a,b" "pairs.{x,y}" = 1.0) or (ReferentialIntegrity "c" "pairs.x" = 1.0),'
            ' IsComplete "a" ]',
            {"pairs": ["x", "y"]},
        ),
    ],
)
def test_the_rule_checks_read_only_the_referenced_columns(rules, expected):
    assert reference_columns(parse_ruleset(rules).rules) == expected


def materialize_curated(instance: dg.DagsterInstance, rows_out: int, state_rows: int) -> None:
    metadata = {"rows_out": rows_out, "state_rows": state_rows}
    instance.report_runless_asset_event(dg.AssetMaterialization(CURATED, metadata=metadata))


def test_row_count_drop_compares_the_curated_state_not_the_batch(tmp_path):
    """A small daily batch after a large first load is no drop; a state that lost most of its rows is."""
    checks = build_curated_health_checks("instructors", 0.5)
    job = dg.define_asset_job("health", selection=dg.AssetSelection.checks(dg.AssetCheckKey(CURATED, "row_count_drop")))
    defs = dg.Definitions(
        assets=[dg.AssetSpec(CURATED)],
        asset_checks=[checks],
        jobs=[job],
        resources={"lake": LocalLake(root=str(tmp_path))},
    )
    with dg.instance_for_test() as instance:
        materialize_curated(instance, rows_out=1000, state_rows=1000)
        materialize_curated(instance, rows_out=10, state_rows=1008)  # day two: 10 rows in, 8 of them new
        daily = defs.resolve_job_def("health").execute_in_process(instance=instance)
        materialize_curated(instance, rows_out=5, state_rows=400)  # newer versions quarantined removed most rows
        shrunk = defs.resolve_job_def("health").execute_in_process(instance=instance)
    assert evaluated(daily) == {"row_count_drop": True}
    assert evaluated(shrunk) == {"row_count_drop": False}


def _other_process_can_open(path) -> bool:
    """Whether another process gets DuckDB's lock on the file (it cannot while this process holds it open)."""
    probe = f"import duckdb; duckdb.connect({str(path)!r}).close()"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


@dg.asset
def loaded(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    warehouse.query("CREATE TABLE t AS SELECT 1 AS x")
    return dg.MaterializeResult(metadata={"locked_during_run": not _other_process_can_open(warehouse.path)})


@dg.asset(deps=[loaded])
def read_back(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": warehouse.query("SELECT count(*) FROM t")[0][0]})


@pytest.mark.parametrize("held", [True, False])
def test_an_in_process_run_holds_the_embedded_warehouse_open_until_it_ends(tmp_path, held):
    path = tmp_path / "warehouse.duckdb"
    resources = {"warehouse": DuckDBWarehouse(path=str(path))}
    with warehouse_held_open(resources) if held else nullcontext():
        result = dg.materialize([loaded, read_back], resources=resources)
    assert result.success
    locked = result.asset_materializations_for_node("loaded")[0].metadata["locked_during_run"].value
    assert locked is held  # held: the file stays open between statements; else each statement opens it
    assert result.asset_materializations_for_node("read_back")[0].metadata["rows"].value == 1
    assert _other_process_can_open(path)  # released at the end, and the table was checkpointed to the file
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_a_warehouse_that_cannot_be_held_open_does_not_stop_the_run(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    locker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print(1, flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert locker.stdout.readline().strip() == b"1"  # the other process holds DuckDB's lock
        with warehouse_held_open({"warehouse": DuckDBWarehouse(path=str(path))}):
            ran = True
    finally:
        locker.communicate(b"")
    assert ran


def test_only_the_embedded_warehouse_is_held_open(tmp_path):
    with warehouse_held_open({"warehouse": PostgresWarehouse(url="postgresql://127.0.0.1:1/none")}):
        pass  # nothing is opened: a connection to that URL would fail
    with warehouse_held_open({}):
        pass


def test_the_local_definitions_load_no_aws_client_library():
    """dagster-aws and boto3 cost most of a second to import: only the AWS twins load them."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, enrollment_platform.definitions; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "ENROLLMENT_ENV": "local"},
    ).stdout.split("'")
    assert "enrollment_platform.definitions" in loaded
    assert not {"dagster_aws", "boto3", "redshift_connector"} & set(loaded)
