"""Data quality: the DQDL parser, each dataset's ruleset, and its compilation to SQL and pandera."""
