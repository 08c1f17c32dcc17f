"""Where the PII hashing key comes from: the environment locally (AWS Secrets Manager arrives with the AWS twin)."""

from pathlib import Path

import dagster as dg

from enrollment_platform.config import load_pii_policy
from enrollment_platform.pii.keys import resolve_hash_key


class LocalPiiKey(dg.ConfigurableResource):
    """The HMAC key from the policy's environment variable, else a key generated once under `home`."""

    home: str
    allow_generated: bool = True

    def key(self) -> bytes:
        env_var = load_pii_policy().get("hash_key_env", "ENROLLMENT_PII_KEY")
        return resolve_hash_key(env_var, Path(self.home), self.allow_generated)
