"""Where the PII hashing key comes from: the environment (or a generated per-installation key) locally, AWS
Secrets Manager in `aws`. Every twin checks its key when a run starts, so a missing key stops the run before any
asset executes, with a message saying what to set; nothing ever falls back to a built-in key."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import dagster as dg

from enrollment_platform.config import load_pii_policy
from enrollment_platform.pii.keys import PiiKeyError, checked_key, resolve_hash_key


class PiiKey(dg.ConfigurableResource):
    """The interface: `key()` returns the HMAC secret or raises PiiKeyError."""

    @abstractmethod
    def key(self) -> bytes:
        """The HMAC secret."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.key()

    def job_env(self) -> dict[str, str]:
        """Environment a launched job step on this machine reads the key from (never its command line)."""
        env_var = load_pii_policy().get("hash_key_env", "ENROLLMENT_PII_KEY")
        return {env_var: self.key().decode()}

    def job_arguments(self) -> dict[str, str]:
        """Arguments telling a launched job step where to fetch the key itself (none: it gets `job_env`)."""
        return {}


class LocalPiiKey(PiiKey):
    """The key from the policy's environment variable, else (when allowed) a key generated once under `home`."""

    home: str
    allow_generated: bool = True

    def key(self) -> bytes:
        env_var = load_pii_policy().get("hash_key_env", "ENROLLMENT_PII_KEY")
        return resolve_hash_key(env_var, Path(self.home), self.allow_generated)


class SecretsManagerPiiKey(PiiKey):
    """The key stored in AWS Secrets Manager (SecretString, or SecretBinary)."""

    secret_id: str
    region_name: str | None = None
    endpoint_url: str | None = None

    def key(self) -> bytes:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client("secretsmanager", region_name=self.region_name, endpoint_url=self.endpoint_url)
        source = f"AWS Secrets Manager secret {self.secret_id!r}"
        try:
            response = client.get_secret_value(SecretId=self.secret_id)
        except (ClientError, BotoCoreError) as error:
            raise PiiKeyError(f"{source} could not be read ({error}): keyed PII tokens need it") from error
        secret = response.get("SecretString")
        value = secret.encode() if secret is not None else response.get("SecretBinary", b"")
        return checked_key(value, source)

    def job_env(self) -> dict[str, str]:
        return {}  # a Glue job reads the secret itself: the key never leaves Secrets Manager

    def job_arguments(self) -> dict[str, str]:
        return {"--pii_key_secret": self.secret_id}
