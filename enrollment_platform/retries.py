"""Retry policies: steps that talk to external systems retry transient errors; data errors never retry.

A step raising `dg.Failure(..., allow_retries=False)` (a data error such as a failed reconciliation) fails at
once whatever its policy. `only_transient_errors` turns every error that is not an I/O or connection error (a
bug, a type error) into such a Failure, so only what may succeed on a second try is retried.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

EXTERNAL_IO_RETRY = dg.RetryPolicy(max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)


def _transient_error_types() -> tuple[type[BaseException], ...]:
    """I/O errors of the standard library and of the clients we talk to (boto3, psycopg, redshift_connector)."""
    found = list(TRANSIENT_ERRORS)
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        found += [BotoCoreError, ClientError]
    except ImportError:  # pragma: no cover - botocore is a dependency
        pass
    try:
        import psycopg

        found.append(psycopg.OperationalError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


@contextmanager
def only_transient_errors() -> Iterator[None]:
    """Let I/O errors through for the step's RetryPolicy; make every other error final."""
    try:
        yield
    except dg.Failure:
        raise
    except _transient_error_types():
        raise
    except Exception as error:
        raise dg.Failure(f"{type(error).__name__}: {error}", allow_retries=False) from error


def retry_transient_only(function):
    """Decorator form of `only_transient_errors` for asset functions (the signature Dagster reads is kept)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with only_transient_errors():
            return function(*args, **kwargs)

    return wrapper
