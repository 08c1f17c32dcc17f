"""Where things live, resolved once from the environment (the contract in DESIGN.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("local", "aws")
ENGINES = ("local", "spark")


class SettingsError(ValueError):
    """A setting is missing or has a value we cannot use; the message names it and says what to do."""


@dataclass(frozen=True)
class Settings:
    env: str
    engine: str
    home: Path
    raw_uri: str
    lake_uri: str
    warehouse_url: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: str | None) -> Settings:
        """Read ENROLLMENT_* variables; explicit keyword overrides (from the CLI) win over the environment."""
        env = dict(os.environ if environ is None else environ)
        for key, value in overrides.items():
            if value is not None:
                env[f"ENROLLMENT_{key.upper()}"] = str(value)
        name = env.get("ENROLLMENT_ENV", "local").strip().lower() or "local"
        if name not in ENVIRONMENTS:
            raise SettingsError(f"ENROLLMENT_ENV={name!r} is not one of {', '.join(ENVIRONMENTS)}")
        engine = env.get("ENROLLMENT_ENGINE", "local").strip().lower() or "local"
        if engine not in ENGINES:
            raise SettingsError(f"ENROLLMENT_ENGINE={engine!r} is not one of {', '.join(ENGINES)}")
        home = Path(env.get("ENROLLMENT_HOME") or ".enrollment").expanduser().absolute()
        return cls(
            env=name,
            engine=engine,
            home=home,
            raw_uri=env.get("ENROLLMENT_RAW_URI") or str(home / "raw_layer"),
            lake_uri=env.get("ENROLLMENT_LAKE_URI") or str(home / "lake"),
            warehouse_url=env.get("ENROLLMENT_WAREHOUSE_URL") or f"duckdb:///{home / 'warehouse.duckdb'}",
        )
