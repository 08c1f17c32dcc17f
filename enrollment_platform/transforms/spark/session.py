"""The one SparkSession factory of the Spark backend (local runs and tests; on Glue the job's session is used)."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",  # DuckDB's TIMESTAMP is naive: keep wall-clock values as they are
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "1g",
    "spark.sql.adaptive.enabled": "false",  # tiny batches: re-planning costs more than it saves
}


def spark_session(app_name: str = "enrollment-platform", master: str | None = None, **conf: str) -> SparkSession:
    """The active session, or a new one: local (`local[2]`, no UI, few shuffle partitions) unless spark-submit
    launched us.

    Python workers run the interpreter of the caller, so pandas UDFs see the same packages (the PII detector).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        # under spark-submit (Glue, a cluster) the launcher has set the master already: keep it
        builder = builder.master(master or os.environ.get("SPARK_MASTER", "local[2]"))
    for name, value in {**DEFAULT_CONF, **conf}.items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
