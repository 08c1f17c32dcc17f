"""The warehouse twin for ENROLLMENT_WAREHOUSE_URL: duckdb:///…, postgresql://…, redshift://…"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from enrollment_platform.resources.warehouse.base import Warehouse
from enrollment_platform.resources.warehouse.embedded import DuckDBWarehouse, duckdb_path
from enrollment_platform.resources.warehouse.postgres import PostgresWarehouse
from enrollment_platform.resources.warehouse.redshift import RedshiftWarehouse
from enrollment_platform.settings import SettingsError

URL_VARIABLE = "ENROLLMENT_WAREHOUSE_URL"
IAM_ROLE_VARIABLE = "ENROLLMENT_REDSHIFT_IAM_ROLE"
PASSWORD_VARIABLE = "ENROLLMENT_REDSHIFT_PASSWORD"
URL_FORMS = "duckdb:///path/to/file.duckdb, postgresql://user@host:5432/db or redshift://user@host:5439/db"


def warehouse_for(
    url: str, lake_uri: str, environ: Mapping[str, str] | None = None, lake_root: str | None = None
) -> Warehouse:
    """The warehouse resource a URL names; a SettingsError names the variable to set when a piece is missing.

    `lake_root`: where the lake resource hands out local copies (the S3 lake's cache), when not `lake_uri`."""
    environ = os.environ if environ is None else environ
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "duckdb":
        return DuckDBWarehouse(path=duckdb_path(url))
    if scheme in ("postgresql", "postgres"):
        return PostgresWarehouse(url=url)
    if scheme == "redshift":
        return redshift_from_url(url, lake_uri, environ, lake_root)
    raise SettingsError(f"{URL_VARIABLE}={url!r} is not a warehouse URL: use {URL_FORMS}")


def redshift_from_url(
    url: str, lake_uri: str, environ: Mapping[str, str], lake_root: str | None = None
) -> RedshiftWarehouse:
    """`redshift://user[:password]@host[:port]/database[?iam_role=arn]`; the IAM role and password may come from
    ENROLLMENT_REDSHIFT_IAM_ROLE / ENROLLMENT_REDSHIFT_PASSWORD; the lake must be in S3 (ENROLLMENT_LAKE_URI)."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    if not (parts.hostname and parts.username and database):
        raise SettingsError(f"{URL_VARIABLE}={url!r}: a Redshift URL needs redshift://user@host:5439/database")
    iam_role = parse_qs(parts.query).get("iam_role", [environ.get(IAM_ROLE_VARIABLE, "")])[0]
    if not iam_role:
        raise SettingsError(
            f"{URL_VARIABLE} is a redshift:// URL: set {IAM_ROLE_VARIABLE} to the ARN of the IAM role Redshift COPYs "
            "from S3 with (or add ?iam_role=arn:aws:iam::…:role/… to the URL)"
        )
    if not lake_uri.startswith("s3://"):
        raise SettingsError(
            f"{URL_VARIABLE} is a redshift:// URL, which COPYs the curated files from S3: set ENROLLMENT_LAKE_URI "
            f"to the lake's s3://bucket/prefix (it is {lake_uri!r})"
        )
    return RedshiftWarehouse(
        host=parts.hostname,
        port=parts.port or 5439,
        database=database,
        user=unquote(parts.username),
        password=unquote(parts.password) if parts.password else environ.get(PASSWORD_VARIABLE),
        iam_role=iam_role,
        lake_root=lake_root or lake_uri,
        lake_s3_uri=lake_uri,
    )
