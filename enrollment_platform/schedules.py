"""The daily schedule: each day, the pipeline runs for that day's ingestion-date partition."""

import dagster as dg

from enrollment_platform.jobs import all_assets_job

daily_schedule = dg.build_schedule_from_partitioned_job(
    all_assets_job,
    description="Processes the raw files that arrived on the day (ingestion-date partition).",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
