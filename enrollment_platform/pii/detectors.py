"""PII detectors, written once: compiled regex candidates plus validators, with AWS Glue's entity names.

The entities, their patterns, options and RE2 prefilters are read from config/pii_policy.yaml (`entities`,
`custom_entities`). A `Detector` finds every entity in a string (overlaps resolved: the longer span wins, on a
tie the entity listed first), redacts a string, and gives the combined RE2 prefilter that SQL engines use to
send only possible-PII cells to Python. The same detector serves `pii detect`, free-text redaction (as a DuckDB
UDF), the detection report and the leak scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from enrollment_platform.config import ConfigError, load_pii_policy
from enrollment_platform.pii.validators import VALIDATORS, Validator

# No letter or digit may touch a candidate (an underscore or punctuation may). Patterns are compiled with
# re.ASCII so that \d, \w and case folding mean what they mean in RE2, the prefilters' dialect.
BEFORE, AFTER = r"(?<![^\W_])", r"(?![^\W_])"


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Entity:
    """One entity type: candidate patterns, the validator they must pass, and the RE2 prefilter."""

    name: str
    patterns: tuple[re.Pattern, ...]
    validator: Validator
    prefilter: str
    options: Mapping[str, Any] = field(default_factory=dict)
    context: tuple[str, ...] = ()
    quick: re.Pattern | None = None  # the prefilter compiled for Python: skip cells it does not match

    def find(self, text: str) -> list[Span]:
        """Every validated occurrence; a rejected candidate lets the search resume one character later."""
        if self.quick is not None and self.quick.search(text) is None:
            return []
        if self.context and not any(word in text.lower() for word in self.context):
            return []
        spans = []
        for pattern in self.patterns:
            position = 0
            while (match := pattern.search(text, position)) is not None:
                accepted = self.validator(match, self.options)
                if accepted is not None:
                    spans.append(Span(self.name, *accepted))
                position = match.end() if accepted is not None and match.end() > match.start() else match.start() + 1
        return spans


def _compile(entity: str, pattern: str, options: Mapping[str, Any]) -> re.Pattern:
    months = options.get("months")
    if months:
        pattern = pattern.replace("{months}", f"(?i:{months})")
    try:
        return re.compile(BEFORE + "(?:" + pattern + ")" + AFTER, re.ASCII)
    except re.error as error:
        raise ConfigError(f"pii_policy.yaml: entities.{entity}: pattern {pattern!r}: {error}") from error


def build_entity(name: str, raw: Mapping[str, Any]) -> Entity:
    """An entity from its config entry (`entities.<name>`)."""
    validator_name = raw.get("validator", "none")
    if validator_name not in VALIDATORS:
        raise ConfigError(f"pii_policy.yaml: entities.{name}: unknown validator {validator_name!r}")
    options = {k: v for k, v in raw.items() if k not in ("patterns", "validator", "prefilter")}
    patterns = tuple(_compile(name, p, options) for p in raw["patterns"])
    try:
        quick = re.compile(raw["prefilter"], re.ASCII)
    except re.error as error:
        raise ConfigError(f"pii_policy.yaml: entities.{name}: prefilter: {error}") from error
    return Entity(name, patterns, VALIDATORS[validator_name], raw["prefilter"], options, quick=quick)


def build_custom_entity(name: str, raw: Mapping[str, Any]) -> Entity:
    """A custom entity (`custom_entities.<name>`): an RE2-compatible pattern, optional context words."""
    pattern = raw["pattern"]
    context = tuple(str(word).lower() for word in raw.get("context", []) or [])
    return Entity(name, (_compile(name, pattern, {}),), VALIDATORS["none"], pattern, {}, context)


class Detector:
    """Finds, counts and redacts PII entities in strings."""

    def __init__(self, entities: Iterable[Entity]):
        self.entities = tuple(entities)
        self.rank = {entity.name: i for i, entity in enumerate(self.entities)}

    @property
    def names(self) -> list[str]:
        return [entity.name for entity in self.entities]

    @property
    def prefilter(self) -> str:
        """One RE2 pattern matching every cell in which some entity could be found."""
        return "|".join(f"(?:{entity.prefilter})" for entity in self.entities)

    def find(self, text: str | None) -> list[Span]:
        """Non-overlapping spans sorted by start: the longer detection wins, then the entity listed first."""
        if not text:
            return []
        candidates = [span for entity in self.entities for span in entity.find(text)]
        candidates.sort(key=lambda s: (-(s.end - s.start), self.rank[s.entity], s.start))
        chosen: list[Span] = []
        for span in candidates:
            if all(span.end <= kept.start or span.start >= kept.end for kept in chosen):
                chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

    def entities_in(self, text: str | None) -> set[str]:
        return {span.entity for span in self.find(text)}

    def redact(self, text: str | None) -> str | None:
        """`text` with every detected entity replaced by `[ENTITY]`."""
        spans = self.find(text)
        if not spans or text is None:
            return text
        parts, position = [], 0
        for span in spans:
            parts += [text[position : span.start], f"[{span.entity}]"]
            position = span.end
        return "".join(parts) + text[position:]


def detector_from_policy(policy: Mapping[str, Any]) -> Detector:
    """The detector of a policy document: built-in entities in their listed order, then custom ones."""
    entities = [build_entity(name, raw) for name, raw in (policy.get("entities") or {}).items()]
    entities += [build_custom_entity(name, raw) for name, raw in (policy.get("custom_entities") or {}).items()]
    return Detector(entities)


@cache
def default_detector() -> Detector:
    """The detector of the packaged policy, built once per process."""
    return detector_from_policy(load_pii_policy())
