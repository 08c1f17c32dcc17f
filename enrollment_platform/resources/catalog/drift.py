"""Schema drift: how a table's new columns differ from the columns it has, and the evolved table. Shared by every
catalog twin; only where a table is stored differs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from enrollment_platform.config import DatasetSpec
from enrollment_platform.resources.catalog.model import LAST_SCHEMA_CHANGE, SCHEMA_VERSION, Column, TableDefinition


@dataclass(frozen=True)
class Rename:
    """A column that probably got a new name: `old` left and `new` came, for `reason`."""

    old: str
    new: str
    reason: str  # "alias of <canonical>", "same position", "same type"


@dataclass(frozen=True)
class TypeChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class Drift:
    """The difference between a table's columns and its files' columns."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    type_changes: tuple[TypeChange, ...] = ()
    renames: tuple[Rename, ...] = ()  # rename candidates: a removed and an added column paired up
    alias_renames: tuple[Rename, ...] = ()  # both names are aliases of one canonical column: not drift

    @property
    def found(self) -> bool:
        """Whether there is drift the policy decides on (alias renames are not)."""
        return bool(self.added or self.removed or self.type_changes or self.renames)

    @property
    def changed(self) -> bool:
        """Whether the table's columns differ at all from the files' columns."""
        return self.found or bool(self.alias_renames)

    @property
    def columns(self) -> list[str]:
        """Every column the drift is about."""
        names = [*self.added, *self.removed, *(c.name for c in self.type_changes)]
        return names + [name for r in (*self.renames, *self.alias_renames) for name in (r.old, r.new)]

    def describe(self) -> str:
        """One line for people: `added ['email']; renamed city -> hometown (same position)`."""
        parts = [f"added {list(self.added)}"] if self.added else []
        parts += [f"removed {list(self.removed)}"] if self.removed else []
        parts += [f"type of {c.name}: {c.old} -> {c.new}" for c in self.type_changes]
        parts += [f"renamed {r.old} -> {r.new} ({r.reason})" for r in (*self.renames, *self.alias_renames)]
        return "; ".join(parts) or "no change"

    def to_dict(self) -> dict:
        return asdict(self) | {"found": self.found}


class SchemaDriftError(ValueError):
    """Schema drift under the `fail` policy; the message names the table and the columns."""

    def __init__(self, database: str, table: str, drift: Drift) -> None:
        self.table = table
        self.drift = drift
        super().__init__(
            f"table {database}.{table}: schema drift, policy 'fail': {drift.describe()} (columns: "
            f"{', '.join(drift.columns)}). Fix the source files, or accept the change with "
            "ENROLLMENT_SCHEMA_DRIFT=evolve"
        )


Matcher = Callable[[Column, Column], str | None]


def detect_drift(current: Sequence[Column], new: Sequence[Column], spec: DatasetSpec | None = None) -> Drift:
    """How `new` differs from the table's `current` (active) columns. A removed and an added column pair up as
    an alias rename when the dataset knows both as names of one canonical column, else as a rename candidate
    when they sit at the same position or, failing that, have the same type."""
    current_names, new_names = [c.name for c in current], [c.name for c in new]
    removed = [c for c in current if c.name not in new_names]
    added = [c for c in new if c.name not in current_names]
    new_types = {c.name: c.type for c in new}
    changes = tuple(
        TypeChange(c.name, c.type, new_types[c.name]) for c in current if new_types.get(c.name, c.type) != c.type
    )
    aliases, removed, added = _pair(removed, added, _alias_matcher(spec))
    positional, removed, added = _pair(removed, added, _position_matcher(current_names, new_names))
    typed, removed, added = _pair(removed, added, lambda old, new: "same type" if old.type == new.type else None)
    return Drift(
        added=tuple(c.name for c in added),
        removed=tuple(c.name for c in removed),
        type_changes=changes,
        renames=(*positional, *typed),
        alias_renames=aliases,
    )


def _pair(removed: list[Column], added: list[Column], match: Matcher) -> tuple[tuple[Rename, ...], list, list]:
    """Pair each removed column with the first added one `match` accepts; return the pairs and what is left."""
    pairs, left = [], list(added)
    unpaired = []
    for old in removed:
        found = next(((new, reason) for new in left if (reason := match(old, new))), None)
        if found is None:
            unpaired.append(old)
            continue
        pairs.append(Rename(old.name, found[0].name, found[1]))
        left.remove(found[0])
    return tuple(pairs), unpaired, left


def _alias_matcher(spec: DatasetSpec | None) -> Matcher:
    def match(old: Column, new: Column) -> str | None:
        canonical = spec.canonical_name(old.name) if spec else None
        return f"alias of {canonical}" if canonical and canonical == spec.canonical_name(new.name) else None

    return match


def _position_matcher(current_names: list[str], new_names: list[str]) -> Matcher:
    return lambda old, new: "same position" if current_names.index(old.name) == new_names.index(new.name) else None


def evolve(table: TableDefinition, new: TableDefinition, drift: Drift, note: str) -> TableDefinition:
    """The table with the new columns added and the new types taken; columns the files no longer have are kept
    and marked absent since `note` (the batch). Records the change in the table's parameters."""
    by_name = {c.name: c for c in new.columns}
    kept = tuple(
        replace(c, type=by_name[c.name].type, absent_since="")
        if c.name in by_name
        else (c if c.absent_since else replace(c, absent_since=note))
        for c in table.columns
    )
    known = {c.name for c in table.columns}
    version = int(table.parameters.get(SCHEMA_VERSION, "1")) + 1
    parameters = table.parameters | {
        SCHEMA_VERSION: str(version),
        LAST_SCHEMA_CHANGE: json.dumps({"at": note, **drift.to_dict()}),
    }
    return replace(
        table,
        location=new.location,
        columns=kept + tuple(c for c in new.columns if c.name not in known),
        description=new.description or table.description,
        parameters=parameters,
    )
