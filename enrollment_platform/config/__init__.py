"""Domain knowledge as data: canonical datasets, column aliases, the DQ ruleset, the PII policy.

Everything the pipeline knows about students, courses, instructors and enrollments is read from the files
beside this module; code never spells a column alias or a rule as a literal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

COLUMN_TYPES = ("id", "text", "name", "lower", "upper", "int", "double", "date", "timestamp")
ON_INVALID = ("quarantine", "nullify")


class ConfigError(ValueError):
    """A config file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    required: bool = False
    on_invalid: str = "quarantine"
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folders: tuple[str, ...]
    primary_key: str
    columns: dict[str, ColumnSpec]
    derived: dict[str, str] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]

    def canonical_name(self, raw_name: str) -> str | None:
        """The canonical column a raw header stands for, or None when it is unknown."""
        key = normalize_header(raw_name)
        for column in self.columns.values():
            if key == column.name or key in column.aliases:
                return column.name
        return None


@dataclass(frozen=True)
class DimensionSpec:
    table: str
    dataset: str
    natural_key: str
    surrogate_key: str
    references: dict[str, tuple[str, str]] = field(default_factory=dict)  # key column -> (dim table, via)


@dataclass(frozen=True)
class Catalog:
    """The parsed datasets.yaml."""

    datasets: dict[str, DatasetSpec]
    warehouse: dict[str, DimensionSpec]
    date_formats: tuple[str, ...]
    timestamp_formats: tuple[str, ...]
    last_modified_column: str

    def dataset_for_folder(self, folder: str) -> str | None:
        folder = folder.strip().lower()
        for spec in self.datasets.values():
            if folder in spec.folders:
                return spec.name
        return None


def normalize_header(name: str) -> str:
    """`  Marks Scored ` -> `marks_scored`: how raw headers are compared with canonical names and aliases."""
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name.strip().lstrip("\ufeff").lower())
    return "_".join(part for part in cleaned.split("_") if part)


def read_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _column(dataset: str, name: str, raw: dict[str, Any]) -> ColumnSpec:
    where = f"datasets.yaml: datasets.{dataset}.columns.{name}"
    if raw.get("type") not in COLUMN_TYPES:
        raise ConfigError(f"{where}: type {raw.get('type')!r} is not one of {COLUMN_TYPES}")
    on_invalid = raw.get("on_invalid", "quarantine")
    if on_invalid not in ON_INVALID:
        raise ConfigError(f"{where}: on_invalid {on_invalid!r} is not one of {ON_INVALID}")
    aliases = tuple(normalize_header(a) for a in raw.get("aliases", []))
    return ColumnSpec(name, raw["type"], bool(raw.get("required", False)), on_invalid, aliases)


def parse_catalog(document: dict[str, Any]) -> Catalog:
    datasets = {}
    for name, raw in document["datasets"].items():
        columns = {col: _column(name, col, spec) for col, spec in raw["columns"].items()}
        if raw["primary_key"] not in columns:
            raise ConfigError(f"datasets.yaml: {name}.primary_key {raw['primary_key']!r} is not a column")
        datasets[name] = DatasetSpec(
            name=name,
            folders=tuple(raw.get("folders", [name])),
            primary_key=raw["primary_key"],
            columns=columns,
            derived=dict(raw.get("derived", {})),
        )
    warehouse = {}
    for table, raw in document["warehouse"].items():
        if raw["dataset"] not in datasets:
            raise ConfigError(f"datasets.yaml: warehouse.{table}.dataset {raw['dataset']!r} is unknown")
        refs = {key: (ref["dimension"], ref["via"]) for key, ref in raw.get("references", {}).items()}
        warehouse[table] = DimensionSpec(table, raw["dataset"], raw["natural_key"], raw["surrogate_key"], refs)
    return Catalog(
        datasets=datasets,
        warehouse=warehouse,
        date_formats=tuple(document["date_formats"]),
        timestamp_formats=tuple(document["timestamp_formats"]),
        last_modified_column=document["last_modified_column"],
    )


@cache
def load_catalog() -> Catalog:
    """The packaged datasets.yaml, parsed once."""
    return parse_catalog(yaml.safe_load(read_text("datasets.yaml")))


@cache
def load_pii_policy() -> dict[str, Any]:
    return yaml.safe_load(read_text("pii_policy.yaml"))


RULES_DIR_ENV = "ENROLLMENT_RULES_DIR"


def ruleset_text(dataset: str) -> str:
    """The DQDL ruleset of a dataset: $ENROLLMENT_RULES_DIR/<dataset>.dqdl when that file exists (your own
    rules, no package edit), else the packaged config/rules/<dataset>.dqdl."""
    folder = os.environ.get(RULES_DIR_ENV)
    if folder and Path(folder, f"{dataset}.dqdl").is_file():
        return Path(folder, f"{dataset}.dqdl").read_text(encoding="utf-8")
    return read_text(f"rules/{dataset}.dqdl")


@cache
def load_quality_settings() -> dict[str, Any]:
    """Thresholds of the non-blocking health checks (config/quality.yaml)."""
    return yaml.safe_load(read_text("quality.yaml"))


SCHEMA_DRIFT_POLICIES = ("evolve", "warn", "fail")
SCHEMA_DRIFT_ENV = "ENROLLMENT_SCHEMA_DRIFT"


@cache
def _configured_schema_drift_policy() -> str:
    return str(yaml.safe_load(read_text("schema_drift.yaml"))["policy"])


def schema_drift_policy(environ: dict[str, str] | None = None) -> str:
    """What the data catalog does on schema drift (config/schema_drift.yaml): `evolve`, `warn` or `fail`;
    $ENROLLMENT_SCHEMA_DRIFT overrides it for one environment."""
    env = os.environ if environ is None else environ
    override = env.get(SCHEMA_DRIFT_ENV, "").strip().lower()
    policy = override or _configured_schema_drift_policy().strip().lower()
    if policy not in SCHEMA_DRIFT_POLICIES:
        where = f"{SCHEMA_DRIFT_ENV}={override!r}" if override else "schema_drift.yaml: policy"
        raise ConfigError(f"{where}: {policy!r} is not one of {', '.join(SCHEMA_DRIFT_POLICIES)}")
    return policy


def load_access_policy(path: str | None = None) -> dict[str, Any]:
    """The access policy document: the file at `path`, else the packaged config/access_policy.yaml (parsed and
    checked by enrollment_platform.security.policy)."""
    text = Path(path).read_text(encoding="utf-8") if path else read_text("access_policy.yaml")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ConfigError(f"{path or 'access_policy.yaml'}: expected a mapping with `roles:`, got {type(document)}")
    return document
