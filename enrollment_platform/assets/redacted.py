"""Redacted layer: every PII column protected as config/pii_policy.yaml says; raw values only in the
restricted table (`restricted/student_pii`), which the access policy grants to the PII admin alone."""

import dagster as dg

from enrollment_platform.assets.common import DATASETS, key, staged, write_query
from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.pii import LocalPiiKey
from enrollment_platform.transforms.redact import needs_key, redact_sql
from enrollment_platform.transforms.sql import column_list


def restricted_tables(dataset: str) -> dict[str, dict]:
    return {name: spec for name, spec in load_pii_policy().get("restricted", {}).items() if spec["dataset"] == dataset}


def restricted_path(table: str) -> list[str]:
    return ["restricted", table, f"{table}.parquet"]


def build_redacted_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("redacted", dataset),
        deps=[key("validated", dataset)],
        group_name="redacted",
        description=f"{dataset}: PII hashed, masked, generalized or dropped per the PII policy.",
        kinds={"duckdb", "parquet"},
    )
    def redacted_asset(lake: LocalLake, engine: DuckDBEngine, pii_key: LocalPiiKey) -> dg.MaterializeResult:
        policy = load_pii_policy()
        spec = load_catalog().datasets[dataset]
        source = f"read_parquet('{staged(lake, 'validated', dataset)}')"
        protected = policy.get("datasets", {}).get(dataset, {})
        key_bytes = pii_key.key() if protected and needs_key({"datasets": {dataset: protected}}) else None
        rows = write_query(
            engine,
            lake,
            redact_sql(spec, policy, key_bytes, source),
            "staging",
            "redacted",
            dataset,
            f"{dataset}.parquet",
        )
        metadata = {
            "rows": dg.MetadataValue.int(rows),
            "pii_actions": dg.MetadataValue.json({c: r["action"] for c, r in protected.items()}),
        }
        for table, restricted in restricted_tables(dataset).items():
            columns = [restricted["key"], *restricted["columns"]]
            query = f"SELECT {column_list(columns)} FROM {source}"
            metadata[f"{table}_rows"] = dg.MetadataValue.int(
                write_query(engine, lake, query, *restricted_path(table), order_by=restricted["key"])
            )
        return dg.MaterializeResult(metadata=metadata)

    return redacted_asset


redacted_assets = [build_redacted_asset(dataset) for dataset in DATASETS]
