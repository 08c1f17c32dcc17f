"""The audit log: every pipeline run leaves one Parquet record under <lake>/_audit/, never rewritten, saying who ran
it, what it read and wrote, and which grants it applied; `enrollment-platform audit` shows the recent ones.

Two real runs over the bundled sample (DuckDB warehouse): the first as ENROLLMENT_ACTOR=ci-bot, the second a rerun of
the same ingestion dates by the OS user, which reads no raw file again and changes no grant.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from enrollment_platform.cli import app
from enrollment_platform.partitions import batch_range
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.runner import dagster_instance, execute_batch, run_pipeline
from enrollment_platform.security import audit
from enrollment_platform_tests.conftest import local_settings

SAMPLE = Path(__file__).resolve().parents[1] / "enrollment_platform" / "sample_data" / "raw"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(settings, first run id, second run id, the first run's access_policy metadata)."""
    home = tmp_path_factory.mktemp("audited")
    settings = local_settings(home, home / "no_raw_here")  # no raw data: the bundled sample
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENROLLMENT_ACTOR", "ci-bot")
        first = run_pipeline(settings)
        assert first.success, first.failures
        patch.delenv("ENROLLMENT_ACTOR")
        tags = dagster_instance(settings).get_run_by_id(first.run_id).tags
        second = execute_batch(settings, *batch_range(tags))
        assert second.success
    return (
        settings,
        first.run_id,
        second.run_id,
        materialized_metadata(settings, first.run_id, "warehouse/access_policy"),
    )


def materialized_metadata(settings, run_id: str, asset: str) -> dict:
    """The metadata an asset reported in a run, from the run's events."""
    records = (
        dagster_instance(settings)
        .get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        .records
    )
    for found in records:
        materialization = found.event_log_entry.dagster_event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return materialization.metadata
    raise AssertionError(f"{asset} was not materialized in run {run_id}")


def record(settings, run_id: str) -> list[dict]:
    return pq.read_table(Path(settings.lake_uri, "_audit", f"{run_id}.parquet")).to_pylist()


def objects(rows: list[dict], kind: str) -> set[str]:
    return {row["object"] for row in rows if row["kind"] == kind}


def test_each_run_leaves_one_record_saying_who_ran_it(runs):
    settings, first, second, _ = runs
    files = sorted(p.name for p in Path(settings.lake_uri, "_audit").iterdir())
    assert files == sorted([f"{first}.parquet", f"{second}.parquet"])
    rows = record(settings, first)
    assert {(r["run_id"], r["job"], r["actor"], r["actor_source"]) for r in rows} == {
        (first, "enrollment_pipeline", "ci-bot", "ENROLLMENT_ACTOR")
    }
    assert {(r["actor"], r["actor_source"]) for r in record(settings, second)} == {(getpass.getuser(), "os user")}


def test_the_record_lists_what_the_run_read_and_wrote(runs):
    settings, first, _, _ = runs
    rows = record(settings, first)
    raw_files = {f"raw_layer/{p.relative_to(SAMPLE).as_posix()}" for p in SAMPLE.rglob("*.*") if p.name[0] != "_"}
    assert objects(rows, "read") >= raw_files
    writes = objects(rows, "write")
    assert {"asset:raw/enrollments", "asset:curated/enrollments", "asset:warehouse/enrollment_fact"} <= writes
    assert {"asset:warehouse/access_policy", "asset:state/raw_bookmarks"} <= writes
    assert any(w.endswith("curated/enrollments/enrollments.parquet") for w in writes)
    fact = next(r for r in rows if r["object"] == "asset:warehouse/enrollment_fact")
    assert json.loads(fact["detail"])["rows"] > 0
    reads = {(r["object"], r["detail"]) for r in rows if r["kind"] == "read"}
    assert ("asset:curated/enrollments", "by asset:warehouse/enrollment_fact") in reads


def test_the_record_lists_the_grants_the_run_applied(runs):
    settings, first, second, policy_metadata = runs
    changes = policy_metadata["changes"].value
    granted = [(r["object"], r["detail"]) for r in record(settings, first) if r["kind"] in ("grant", "revoke")]
    assert granted == [(c["statement"], c["target"]) for c in changes]
    assert granted and all(target == "duckdb" for _, target in granted)
    # the rerun read no raw file again, and the policy was in place already
    again = record(settings, second)
    assert not any(r["object"].startswith("raw_layer/") for r in again)
    assert objects(again, "grant") == objects(again, "revoke") == set()
    assert "asset:warehouse/access_policy" in objects(again, "write")


def test_a_record_is_never_rewritten(runs):
    settings, first, _, _ = runs
    lake = LocalLake(root=settings.lake_uri)
    path = Path(settings.lake_uri, "_audit", f"{first}.parquet")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    again = audit.record({"run_id": first, "job": "x", "batch": "y"}, [audit.Entry("write", "forged")])
    assert audit.write_record(lake, again) is False
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert "forged" not in objects(record(settings, first), "write")


def test_the_audit_command_shows_recent_runs(runs):
    settings, first, second, _ = runs
    cli = CliRunner()
    latest = cli.invoke(app, ["audit", "--home", str(settings.home), "--json", "--limit", "1"])
    assert latest.exit_code == 0, latest.output
    assert [r["run_id"] for r in json.loads(latest.stdout)] == [second]
    both = json.loads(cli.invoke(app, ["audit", "--home", str(settings.home), "--json"]).stdout)
    assert [r["run_id"] for r in both] == [second, first]
    assert both[1]["actor"] == "ci-bot" and both[1]["access_changes"] and not both[0]["access_changes"]
    text = cli.invoke(app, ["audit", "--home", str(settings.home)])
    assert text.exit_code == 0 and first[:8] in text.output and "CREATE VIEW" in text.output


def test_the_audit_command_with_no_records(tmp_path):
    result = CliRunner().invoke(app, ["audit", "--home", str(tmp_path)])
    assert result.exit_code == 0 and "no audit records" in result.output


def test_who_ran_it_comes_from_the_variable_then_the_run_tag_then_the_os_user():
    assert audit.who({"enrollment/actor": "sched"}, {"ENROLLMENT_ACTOR": "alice"}) == ("alice", "ENROLLMENT_ACTOR")
    assert audit.who({"enrollment/actor": "sched"}, {}) == ("sched", "run tag enrollment/actor")
    assert audit.who({}, {}) == (getpass.getuser(), "os user")


def test_changes_are_told_apart_as_grants_and_revocations():
    assert audit.change_kind('GRANT SELECT ON TABLE "t" TO "r"') == "grant"
    assert audit.change_kind('REVOKE SELECT ON TABLE "t" FROM "r"') == "revoke"
    assert audit.change_kind('DETACH RLS POLICY "p" ON TABLE "t" FROM ROLE "r"') == "revoke"
    assert audit.change_kind(json.dumps({"operation": "revoke_permissions", "params": {}})) == "revoke"
    assert audit.change_kind(json.dumps({"operation": "create_data_cells_filter", "params": {}})) == "grant"
