"""The Dagster code location: every asset and check, with resources chosen by ENROLLMENT_ENV."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg

from enrollment_platform.assets.curated import curated_assets, curated_checks
from enrollment_platform.assets.deduped import deduped_assets
from enrollment_platform.assets.raw import raw_assets
from enrollment_platform.assets.redacted import redacted_assets
from enrollment_platform.assets.standardized import standardized_assets
from enrollment_platform.assets.validated import build_validated_assets
from enrollment_platform.assets.warehouse import warehouse_assets
from enrollment_platform.config import load_catalog
from enrollment_platform.jobs import all_assets_job
from enrollment_platform.pii.leak_scan import leak_checks
from enrollment_platform.quality.asset_checks import build_quality_checks
from enrollment_platform.quality.rules import DQRule, all_dataset_rules
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.notifier import local_notifier
from enrollment_platform.resources.pii import LocalPiiKey
from enrollment_platform.resources.raw import LocalRawLayer
from enrollment_platform.resources.warehouse import warehouse_for
from enrollment_platform.schedules import daily_schedule
from enrollment_platform.sensors import build_sensors
from enrollment_platform.settings import Settings, SettingsError

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
        *warehouse_assets,
    ]
    checks = [*curated_checks, *build_quality_checks(rules_by_dataset), *leak_checks]
    return assets, checks


def bundled_sample() -> Path:
    return Path(__file__).resolve().parent / "sample_data" / "raw"


def raw_root(settings: Settings) -> str:
    """The raw layer to read: the configured one, or the bundled sample when it holds no data yet."""
    configured = LocalRawLayer(root=settings.raw_uri)
    if configured.has_data(load_catalog()):
        return settings.raw_uri
    log.warning("no raw data under %s: using the bundled sample", settings.raw_uri)
    return str(bundled_sample())


def local_resources(settings: Settings) -> dict:
    return {
        "raw_layer": LocalRawLayer(root=raw_root(settings)),
        "lake": LocalLake(root=settings.lake_uri),
        "engine": DuckDBEngine(temp_directory=str(settings.home / "tmp")),
        "warehouse": warehouse_for(settings.warehouse_url, settings.lake_uri),
        "pii_key": LocalPiiKey(home=str(settings.home)),
        "notifier": local_notifier(settings.home),
    }


def resources_for(settings: Settings) -> dict:
    """Resources per environment: one variable (ENROLLMENT_ENV) picks the twin of every resource."""
    if settings.env == "local":
        return local_resources(settings)
    raise SettingsError(
        f"ENROLLMENT_ENV={settings.env!r}: the AWS twins (S3 lake, Glue, Glue Data Catalog, Redshift, SNS, "
        "Lake Formation) are not available in this version; use ENROLLMENT_ENV=local"
    )


def build_definitions(
    settings: Settings | None = None, rules_by_dataset: dict[str, tuple[DQRule, ...]] | None = None
) -> dg.Definitions:
    settings = settings or Settings.from_env()
    assets, checks = build_assets_and_checks(rules_by_dataset)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[all_assets_job],
        schedules=[daily_schedule],
        sensors=build_sensors(all_assets_job),
        resources=resources_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev` (workspace.yaml); settings are read from the environment at load time."""
    return build_definitions()
