"""Apply the access policy to whichever warehouse the `warehouse` resource is: PostgreSQL for real, Redshift
through its connection, DuckDB as preview views (nothing is enforced there)."""

from __future__ import annotations

from enrollment_platform.resources.warehouse import DuckDBWarehouse, PostgresWarehouse, RedshiftWarehouse, Warehouse
from enrollment_platform.security import embedded, postgres, redshift
from enrollment_platform.security.access import ApplyResult
from enrollment_platform.security.policy import AccessPolicy
from enrollment_platform.security.schema import StarSchema

APPLIERS = ((PostgresWarehouse, postgres.apply), (RedshiftWarehouse, redshift.apply), (DuckDBWarehouse, embedded.apply))


def apply_policy(warehouse: Warehouse, policy: AccessPolicy, schema: StarSchema) -> ApplyResult:
    """Bring the warehouse's roles, grants, row security and masking in line with the policy."""
    for kind, apply in APPLIERS:
        if isinstance(warehouse, kind):
            return apply(warehouse, policy, schema)
    raise TypeError(f"no access-policy compiler for the warehouse {type(warehouse).__name__}")
