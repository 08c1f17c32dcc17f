"""The secret behind keyed PII tokens (HMAC-SHA256).

The key comes from the environment variable the policy names (ENROLLMENT_PII_KEY by default). On a laptop with
no key set, a random key is created once under $ENROLLMENT_HOME/secrets/ (mode 0600) and reused, so tokens
stay stable across runs of that installation; the log says so. Nothing ever falls back to a built-in key.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)
MIN_KEY_BYTES = 16


class PiiKeyError(ValueError):
    """The HMAC key is missing or too short; the message says which variable to set."""


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104), so an engine can compute HMAC-SHA256 in plain SQL."""
    if len(key) > 64:
        import hashlib

        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def checked_key(key: bytes, source: str) -> bytes:
    """`key` when it is long enough to be a secret; else a PiiKeyError naming where it came from."""
    if len(key) < MIN_KEY_BYTES:
        raise PiiKeyError(f"{source} is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes")
    return key


def resolve_hash_key(env_var: str, home: Path, allow_generated: bool = True) -> bytes:
    """The key from `env_var`, else (locally, when allowed) the installation's generated key."""
    value = os.environ.get(env_var, "")
    if value:
        return checked_key(value.encode(), env_var)
    if not allow_generated:
        raise PiiKeyError(
            f"{env_var} is not set: keyed PII tokens (HMAC-SHA256) need a secret and this deployment does not "
            f"generate one; set {env_var} to at least {MIN_KEY_BYTES} random bytes"
        )
    path = home / "secrets" / "pii_hmac.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        log.warning("%s is not set: generated a PII hashing key for this installation at %s", env_var, path)
    return path.read_text().strip().encode()
