"""Where things live, resolved once from the environment (the contract in DESIGN.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("local", "aws")
ENGINES = ("local", "spark")
SPARK_LAUNCHES = ("in_process", "subprocess")


class SettingsError(ValueError):
    """A setting is missing or has a value we cannot use; the message names it and says what to do."""


@dataclass(frozen=True)
class Settings:
    env: str
    engine: str
    home: Path
    raw_uri: str
    lake_uri: str
    warehouse_url: str
    spark_launch: str = "in_process"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: str | None) -> Settings:
        """Read ENROLLMENT_* variables; explicit keyword overrides (from the CLI) win over the environment."""
        env = dict(os.environ if environ is None else environ)
        for key, value in overrides.items():
            if value is not None:
                env[f"ENROLLMENT_{key.upper()}"] = str(value)
        name = env.get("ENROLLMENT_ENV", "local").strip().lower() or "local"
        if name not in ENVIRONMENTS:
            raise SettingsError(f"ENROLLMENT_ENV={name!r} is not one of {', '.join(ENVIRONMENTS)}")
        engine = env.get("ENROLLMENT_ENGINE", "local").strip().lower() or "local"
        if engine not in ENGINES:
            raise SettingsError(f"ENROLLMENT_ENGINE={engine!r} is not one of {', '.join(ENGINES)}")
        launch = env.get("ENROLLMENT_SPARK_LAUNCH", "in_process").strip().lower() or "in_process"
        if launch not in SPARK_LAUNCHES:
            raise SettingsError(f"ENROLLMENT_SPARK_LAUNCH={launch!r} is not one of {', '.join(SPARK_LAUNCHES)}")
        home = Path(env.get("ENROLLMENT_HOME") or ".enrollment").expanduser().absolute()
        return cls(
            env=name,
            engine=engine,
            home=home,
            raw_uri=env.get("ENROLLMENT_RAW_URI") or str(home / "raw_layer"),
            lake_uri=env.get("ENROLLMENT_LAKE_URI") or str(home / "lake"),
            warehouse_url=env.get("ENROLLMENT_WAREHOUSE_URL") or f"duckdb:///{home / 'warehouse.duckdb'}",
            spark_launch=launch,
        )


REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
SNS_TOPIC_VARIABLE = "ENROLLMENT_SNS_TOPIC_ARN"
PII_SECRET_VARIABLE = "ENROLLMENT_PII_SECRET_ID"
GLUE_DATABASE_VARIABLE = "ENROLLMENT_GLUE_DATABASE"
PIPES_BUCKET_VARIABLE = "ENROLLMENT_PIPES_BUCKET"
PIPES_PREFIX_VARIABLE = "ENROLLMENT_PIPES_PREFIX"
GLUE_JOB_PREFIX_VARIABLE = "ENROLLMENT_GLUE_JOB_PREFIX"
# what each setting of `aws` is, for the message naming a missing one (the stacks' outputs give every value)
AWS_REQUIRED = {
    "ENROLLMENT_RAW_URI": "the raw bucket as s3://bucket[/prefix] (storage stack output RawBucketName)",
    "ENROLLMENT_LAKE_URI": "the curated lake as s3://bucket[/prefix] (storage stack output CuratedBucketName)",
    "ENROLLMENT_WAREHOUSE_URL": "redshift://user@workgroup-endpoint:5439/db (or postgresql://…)",
    SNS_TOPIC_VARIABLE: "the SNS topic for run and check notifications (notifications stack output)",
    PII_SECRET_VARIABLE: "the Secrets Manager secret id of the PII hashing key",
    GLUE_DATABASE_VARIABLE: "the Glue Data Catalog database (catalog stack output)",
}
SPARK_REQUIRED = {PIPES_BUCKET_VARIABLE: "the S3 bucket Dagster Pipes exchanges Glue job context and messages in"}


@dataclass(frozen=True)
class AwsSettings:
    """What `ENROLLMENT_ENV=aws` needs beyond the common settings; every missing one is named at load time."""

    region: str
    glue_job_prefix: str
    pipes_prefix: str

    @classmethod
    def from_env(cls, settings: Settings, environ: dict[str, str] | os._Environ) -> AwsSettings:
        required = {**AWS_REQUIRED, **(SPARK_REQUIRED if settings.engine == "spark" else {})}
        missing = [f"{name} ({meaning})" for name, meaning in required.items() if not environ.get(name)]
        region = next((environ[name] for name in REGION_VARIABLES if environ.get(name)), "")
        if not region:
            missing.insert(0, "AWS_REGION (the region every AWS client uses)")
        if missing:
            raise SettingsError("ENROLLMENT_ENV=aws needs these settings: " + "; ".join(missing))
        for name in ("ENROLLMENT_RAW_URI", "ENROLLMENT_LAKE_URI"):
            split_s3_uri(environ[name], name)
        return cls(
            region=region,
            glue_job_prefix=environ.get(GLUE_JOB_PREFIX_VARIABLE) or "enrollment",
            pipes_prefix=environ.get(PIPES_PREFIX_VARIABLE) or "dagster-pipes/",
        )


def split_s3_uri(uri: str, variable: str) -> tuple[str, str]:
    """(bucket, prefix) of an s3:// URI; a SettingsError names the variable otherwise."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise SettingsError(f"{variable}={uri!r}: ENROLLMENT_ENV=aws needs an s3://bucket[/prefix] URI")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")
