"""Retry policies: steps that talk to external systems retry transient errors; data errors never retry.

A step raising `dg.Failure(..., allow_retries=False)` (a data error such as a failed reconciliation) fails at
once whatever its policy; any other exception (a dropped connection, a throttled API) is retried.
"""

import dagster as dg

EXTERNAL_IO_RETRY = dg.RetryPolicy(max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL)
