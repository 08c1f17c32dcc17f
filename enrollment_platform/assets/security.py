"""Access control and audit, the last steps of a run.

- `warehouse/access_policy`: after every warehouse table is loaded, the access policy (config/access_policy.yaml)
  is applied through the `warehouse` resource: for real on PostgreSQL and Redshift, as preview views (and a warning)
  on DuckDB, which has no users; in `aws` also to Lake Formation. Its metadata lists every change it made.
- `audit/run_log`: the run's audit record, who ran it, what it read and wrote and which grants it changed, written
  once to `<lake>/_audit/<run id>.parquet` (enrollment_platform/security/audit.py; `enrollment-platform audit`).
"""

import dagster as dg

from enrollment_platform.assets.common import DATASETS, batch_of, key
from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.partitions import ingest_date_partitions, single_run_backfill
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import Warehouse
from enrollment_platform.retries import EXTERNAL_IO_RETRY, retry_transient_only
from enrollment_platform.security import audit, lakeformation
from enrollment_platform.security.access import ApplyResult
from enrollment_platform.security.apply import apply_policy
from enrollment_platform.security.policy import DQ_RESULTS, AccessPolicy, load_policy
from enrollment_platform.security.schema import star_schema_from_lake

POLICY_KEY = key("warehouse", "access_policy")
AUDIT_KEY = key("audit", "run_log")
BOOKMARKS_KEY = key("state", "raw_bookmarks")


def warehouse_table_keys() -> list[dg.AssetKey]:
    """The warehouse tables the policy grants on: the star schema, the restricted tables, dq_results."""
    tables = [*load_catalog().warehouse, *load_pii_policy().get("restricted", {}), DQ_RESULTS]
    return [key("warehouse", table) for table in tables]


def apply_everywhere(lake: LocalLake, warehouse: Warehouse, policy: AccessPolicy) -> list[ApplyResult]:
    """The policy on the warehouse, and on Lake Formation when the deployment is `aws` with a Glue database."""
    schema = star_schema_from_lake(lake)
    results = [apply_policy(warehouse, policy, schema)]
    target = lakeformation.target_from_env()
    if target is not None:
        import boto3

        lookup = lakeformation.curated_lookup(lake, schema)
        results.append(lakeformation.apply(boto3.client("lakeformation"), policy, schema, target, lookup))
    return results


def policy_metadata(policy: AccessPolicy, results: list[ApplyResult]) -> dict:
    changes = [{"target": r.target, "statement": s} for r in results for s in r.changes]
    return {
        "targets": dg.MetadataValue.json(
            {r.target: {"enforced": r.enforced, "changes": len(r.changes)} for r in results}
        ),
        "enforced": dg.MetadataValue.bool(all(r.enforced for r in results)),
        "roles": dg.MetadataValue.json(sorted(policy.roles)),
        "changed": dg.MetadataValue.int(len(changes)),
        "changes": dg.MetadataValue.json(changes),
        "warnings": dg.MetadataValue.json([w for r in results for w in r.warnings]),
        "tables_not_loaded_yet": dg.MetadataValue.json(sorted({t for r in results for t in r.missing_tables})),
        "dropped_roles": dg.MetadataValue.json([d for r in results for d in r.dropped_roles]),
    }


@dg.asset(
    key=POLICY_KEY,
    deps=warehouse_table_keys(),
    group_name="warehouse",
    description="Roles, grants, column grants, row-level security and masking from config/access_policy.yaml, "
    "applied idempotently to the warehouse (DuckDB: preview views only, it has no users).",
    kinds={"sql"},
    partitions_def=ingest_date_partitions,
    backfill_policy=single_run_backfill,
    retry_policy=EXTERNAL_IO_RETRY,
)
@retry_transient_only
def access_policy(context: dg.AssetExecutionContext, lake: LocalLake, warehouse: Warehouse) -> dg.MaterializeResult:
    policy = load_policy()
    if policy is None:
        note = "ENROLLMENT_ACCESS_POLICY=off: the deployment manages the warehouse's roles itself"
        return dg.MaterializeResult(metadata={"applied": dg.MetadataValue.bool(False), "note": note})
    results = apply_everywhere(lake, warehouse, policy)
    for result in results:
        for warning in result.warnings:
            context.log.warning(warning)
    return dg.MaterializeResult(metadata=policy_metadata(policy, results))


def run_materializations(context: dg.AssetExecutionContext) -> list[audit.Materialized]:
    """The assets this run materialized so far, from the run's events."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    found = []
    for record in records:
        materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
        found.append(
            audit.Materialized.from_metadata(materialization.asset_key.to_user_string(), materialization.metadata)
        )
    return found


def upstream(context: dg.AssetExecutionContext, assets: list[str]) -> dict[str, list[str]]:
    """What each asset depends on, from the job's asset graph."""
    graph = context.job_def.asset_layer.asset_graph
    parents = {}
    for asset in assets:
        asset_key = dg.AssetKey.from_user_string(asset)
        if graph.has(asset_key):
            parents[asset] = sorted(p.to_user_string() for p in graph.get(asset_key).parent_keys)
    return parents


@dg.asset(
    key=AUDIT_KEY,
    deps=[POLICY_KEY, BOOKMARKS_KEY],
    group_name="warehouse",
    description="The run's audit record: who ran it, what it read and wrote, which grants it changed; one Parquet "
    "file per run under <lake>/_audit/, never rewritten.",
    kinds={"parquet"},
    partitions_def=ingest_date_partitions,
    backfill_policy=single_run_backfill,
)
def audit_log(context: dg.AssetExecutionContext, lake: LocalLake) -> dg.MaterializeResult:
    batch = batch_of(context)
    materialized = run_materializations(context)
    entries = audit.raw_reads(lake, batch, DATASETS)
    entries += audit.asset_entries(materialized, upstream(context, [m.asset for m in materialized]))
    run = {"run_id": context.run.run_id, "job": context.run.job_name, "batch": batch, "tags": context.run.tags}
    table = audit.record(run, entries)
    written = audit.write_record(lake, table)
    if not written:
        context.log.info(f"the audit record of run {context.run.run_id} exists already: it is never rewritten")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(lake.path(*audit.record_parts(context.run.run_id))),
            "written": dg.MetadataValue.bool(written),
            "actor": table["actor"][0].as_py(),
            "entries": dg.MetadataValue.int(len(entries)),
        }
    )


security_assets = [access_policy, audit_log]
