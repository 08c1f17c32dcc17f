"""Shared fixtures: where the peer cases and the original raw files are, and pipeline runs to reuse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from enrollment_platform.settings import Settings

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
# one PII key for every run of the suite, so tokens from different homes compare equal
os.environ.setdefault("ENROLLMENT_PII_KEY", "test-suite-pii-key-0123456789abcdef")


def shared_dir(*parts: str) -> Path:
    """A folder of ../shared (beside the clone, in CI too); skip when absent, but never in CI."""
    root = Path(os.environ.get("ENROLLMENT_SHARED_DIR", REPO.parent / "shared"))
    path = root.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found: set ENROLLMENT_SHARED_DIR to the shared/ folder"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def local_settings(home: Path, raw: Path | str) -> Settings:
    """Settings for a run that reads `raw` and keeps everything else under `home`, ignoring the caller's env."""
    return Settings.from_env(environ={}, home=str(home), raw_uri=str(raw))


@pytest.fixture(scope="session")
def original_raw() -> Path:
    return shared_dir("original_raw")


@pytest.fixture(scope="session")
def generated_raw(tmp_path_factory) -> tuple[Path, dict]:
    """A generated raw layer with every defect kind, and its manifest."""
    from enrollment_platform.generator import generate_raw_layer

    out = tmp_path_factory.mktemp("generated_raw")
    manifest = generate_raw_layer(out, 3000, seed=11)
    return out, manifest


@pytest.fixture(scope="session")
def generated_run(generated_raw, tmp_path_factory):
    """One pipeline run over the generated raw layer: (settings, summary, manifest)."""
    from enrollment_platform.runner import run_pipeline

    raw, manifest = generated_raw
    settings = local_settings(tmp_path_factory.mktemp("generated_home"), raw)
    summary = run_pipeline(settings)
    assert summary.success, summary.failures
    return settings, summary, manifest


@pytest.fixture(scope="session")
def original_run(original_raw, tmp_path_factory):
    from enrollment_platform.runner import run_pipeline

    settings = local_settings(tmp_path_factory.mktemp("original_home"), original_raw)
    summary = run_pipeline(settings)
    assert summary.success, summary.failures
    return settings, summary


POSTGRES_URL = os.environ.get("ENROLLMENT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server ($ENROLLMENT_TEST_POSTGRES_URL); skip when unreachable, but never in CI."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        reason = str(error).strip()
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({reason}): set ENROLLMENT_TEST_POSTGRES_URL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_URL


def fake_aws_account(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Credentials and region for moto's in-process mock (and no endpoint left over from a moto server test)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="module")
def pii_con():
    """A DuckDB connection that knows the PII functions (pii_redact, pii_entities)."""
    import duckdb

    from enrollment_platform.pii.duckdb_functions import register_pii_functions

    connection = duckdb.connect()
    register_pii_functions(connection)
    yield connection
    connection.close()
