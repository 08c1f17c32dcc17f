"""Access control: one access policy (config/access_policy.yaml) compiled to every place data is read.

- `policy.py`: the policy as a checked model (roles, privileges, table/column rules, masks, row filters);
- `schema.py`: the warehouse tables it is resolved against (from the curated files, as the load builds them);
- `access.py`: the resolution, per role and table, that every compiler starts from, and the SQL they share;
- `grants.py`: privileges as sets, and the GRANT/REVOKE that turn the current set into the desired one;
- `postgres.py`, `redshift.py`: the policy in each warehouse's SQL, applied idempotently from its catalog;
- `embedded.py`: DuckDB, which has no users: per-role preview views and a warning, never enforcement;
- `lakeformation.py`: Lake Formation grants and data-cells filters on the curated tables (boto3 requests);
- `apply.py`: the warehouse resource -> its compiler; `audit.py`: the append-only record of every run.
"""

from enrollment_platform.security.access import ApplyResult
from enrollment_platform.security.policy import AccessPolicy, PolicyError, load_policy, parse_policy

__all__ = ["AccessPolicy", "ApplyResult", "PolicyError", "load_policy", "parse_policy"]
