"""PII protection: keyed tokens, masking and free-text redaction driven by config/pii_policy.yaml."""
