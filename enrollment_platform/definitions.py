"""The Dagster code location: every asset and check, with resources chosen by ENROLLMENT_ENV."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from enrollment_platform.assets.catalog import catalog_assets
from enrollment_platform.assets.curated import curated_assets
from enrollment_platform.assets.deduped import deduped_assets
from enrollment_platform.assets.monitoring import monitoring_assets
from enrollment_platform.assets.raw import raw_assets
from enrollment_platform.assets.redacted import redacted_assets
from enrollment_platform.assets.security import security_assets
from enrollment_platform.assets.standardized import standardized_assets
from enrollment_platform.assets.validated import build_validated_assets
from enrollment_platform.assets.warehouse import warehouse_assets
from enrollment_platform.config import load_catalog
from enrollment_platform.jobs import all_assets_job
from enrollment_platform.pii.leak_scan import leak_checks
from enrollment_platform.quality.asset_checks import build_quality_checks
from enrollment_platform.quality.rules import DQRule, all_dataset_rules
from enrollment_platform.resources.catalog import GlueCatalog, LocalCatalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import GlueJobRunner, InProcessJobRunner, JobRunner, LocalSparkJobRunner
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.notifier import local_notifier, sns_notifier
from enrollment_platform.resources.pii import LocalPiiKey, SecretsManagerPiiKey
from enrollment_platform.resources.raw import LocalRawLayer
from enrollment_platform.resources.warehouse import warehouse_for
from enrollment_platform.schedules import daily_schedule
from enrollment_platform.sensors import build_sensors
from enrollment_platform.settings import (
    GLUE_DATABASE_VARIABLE,
    PII_SECRET_VARIABLE,
    PIPES_BUCKET_VARIABLE,
    AwsSettings,
    Settings,
    split_s3_uri,
)

log = logging.getLogger(__name__)


def build_assets_and_checks(rules_by_dataset: dict[str, tuple[DQRule, ...]] | None = None) -> tuple[list, list]:
    """Every asset and check; the validated assets and rule checks come from the rulesets given (or config)."""
    rules_by_dataset = rules_by_dataset or all_dataset_rules()
    assets = [
        *raw_assets,
        *standardized_assets,
        *deduped_assets,
        *build_validated_assets(rules_by_dataset),
        *redacted_assets,
        *curated_assets,
        *catalog_assets,
        *warehouse_assets,
        *security_assets,
        *monitoring_assets,
    ]
    checks = [*build_quality_checks(rules_by_dataset), *leak_checks]
    return assets, checks


def bundled_sample() -> Path:
    return Path(__file__).resolve().parent / "sample_data" / "raw"


def raw_root(settings: Settings) -> str:
    """The raw layer to read: the configured one, or (locally) the bundled sample when it holds no data yet."""
    if settings.env == "aws":
        return settings.raw_uri
    configured = LocalRawLayer(root=settings.raw_uri)
    if configured.has_data(load_catalog()):
        return settings.raw_uri
    log.warning("no raw data under %s: using the bundled sample", settings.raw_uri)
    return str(bundled_sample())


def local_resources(settings: Settings, raw_uri: str | None = None) -> dict:
    """The local twins; `raw_uri`: the raw layer `raw_root(settings)` chose, when the caller already asked."""
    return {
        "raw_layer": LocalRawLayer(root=raw_uri or raw_root(settings)),
        "lake": LocalLake(root=settings.lake_uri),
        "catalog": LocalCatalog(root=str(Path(settings.lake_uri) / "_catalog")),
        "engine": DuckDBEngine(temp_directory=str(settings.home / "tmp")),
        "warehouse": warehouse_for(settings.warehouse_url, settings.lake_uri),
        "pii_key": LocalPiiKey(home=str(settings.home)),
        "notifier": local_notifier(settings.home),
        "job_runner": local_job_runner(settings),
    }


def local_job_runner(settings: Settings) -> JobRunner:
    """ENROLLMENT_ENGINE: the steps in this process on DuckDB (local) or on local PySpark (spark)."""
    if settings.engine == "spark":
        return LocalSparkJobRunner(launch=settings.spark_launch)
    return InProcessJobRunner()


def aws_resources(settings: Settings, environ: Mapping[str, str] | None = None) -> dict:
    """The AWS twins: S3 raw layer and lake (mirrored under $ENROLLMENT_HOME/cache), Glue Data Catalog, SNS,
    Secrets Manager key, the warehouse of ENROLLMENT_WAREHOUSE_URL (Redshift, or PostgreSQL), and Glue jobs for
    ENROLLMENT_ENGINE=spark. Values a deployment changes without a code change are Dagster EnvVars."""
    from dagster_aws.s3 import S3Resource  # dagster-aws (and boto3) load only for the AWS twins

    from enrollment_platform.resources.lake_s3 import S3Lake
    from enrollment_platform.resources.raw_s3 import S3RawLayer

    aws = AwsSettings.from_env(settings, os.environ if environ is None else environ)
    s3 = S3Resource(region_name=aws.region)
    raw_bucket, raw_prefix = split_s3_uri(settings.raw_uri, "ENROLLMENT_RAW_URI")
    lake_bucket, lake_prefix = split_s3_uri(settings.lake_uri, "ENROLLMENT_LAKE_URI")
    lake_cache = settings.home / "cache" / "lake"
    return {
        "raw_layer": S3RawLayer(
            s3=s3, bucket=raw_bucket, prefix=raw_prefix, cache_dir=str(settings.home / "cache" / "raw")
        ),
        "lake": S3Lake(s3=s3, bucket=lake_bucket, prefix=lake_prefix, cache_dir=str(lake_cache)),
        "catalog": GlueCatalog(database=dg.EnvVar(GLUE_DATABASE_VARIABLE), region_name=aws.region),
        "engine": DuckDBEngine(temp_directory=str(settings.home / "tmp")),
        "warehouse": warehouse_for(settings.warehouse_url, settings.lake_uri, lake_root=str(lake_cache)),
        "pii_key": SecretsManagerPiiKey(secret_id=dg.EnvVar(PII_SECRET_VARIABLE), region_name=aws.region),
        "notifier": sns_notifier(),
        "job_runner": aws_job_runner(settings, aws),
    }


def aws_job_runner(settings: Settings, aws: AwsSettings) -> JobRunner:
    """ENROLLMENT_ENGINE=spark in `aws`: the steps are Glue jobs; `local`: DuckDB in this process."""
    if settings.engine != "spark":
        return InProcessJobRunner()
    return GlueJobRunner(
        job_prefix=aws.glue_job_prefix,
        pipes_bucket=dg.EnvVar(PIPES_BUCKET_VARIABLE),
        pipes_prefix=aws.pipes_prefix,
        region_name=aws.region,
    )


def resources_for(settings: Settings, raw_uri: str | None = None) -> dict:
    """Resources per environment: one variable (ENROLLMENT_ENV) picks the twin of every resource."""
    if settings.env == "aws":
        return aws_resources(settings)
    return local_resources(settings, raw_uri)


def build_definitions(
    settings: Settings | None = None,
    rules_by_dataset: dict[str, tuple[DQRule, ...]] | None = None,
    resources: dict | None = None,
) -> dg.Definitions:
    """Every definition; `resources` (those of `resources_for(settings)`) when the caller already made them."""
    settings = settings or Settings.from_env()
    assets, checks = build_assets_and_checks(rules_by_dataset)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[all_assets_job],
        schedules=[daily_schedule],
        sensors=build_sensors(all_assets_job),
        resources=resources or resources_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev` (workspace.yaml); settings are read from the environment at load time."""
    return build_definitions()
