"""Assets, one module per layer: raw -> standardized -> deduped -> validated -> redacted -> curated -> warehouse."""
