"""PySpark backend of the job logic (standardize, dedup, validate, redact), for AWS Glue.

Each step mirrors its DuckDB twin in `enrollment_platform.transforms` row for row, is driven by the same config
objects (`load_catalog()`, `dataset_rules()`, `load_pii_policy()`) and reads and writes Parquet with exactly the
columns the DuckDB step writes, so an engine seam can swap one for the other per step.
"""

from enrollment_platform.transforms.spark.dedup import dedup, ranked_frame
from enrollment_platform.transforms.spark.redact import redact, redacted_frame
from enrollment_platform.transforms.spark.session import spark_session
from enrollment_platform.transforms.spark.standardize import standardize, standardized_frame
from enrollment_platform.transforms.spark.validate import validate

__all__ = [
    "dedup",
    "ranked_frame",
    "redact",
    "redacted_frame",
    "spark_session",
    "standardize",
    "standardized_frame",
    "validate",
]
