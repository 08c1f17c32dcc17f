"""The DQ ruleset of each dataset, parsed from config/rules/<dataset>.dqdl, with a severity per rule.

Severity comes from the rule's DQDL label `severity` ("blocking", "nullify" or "warn"). Without one, a
row-level value rule on an attribute of a dimension is `nullify` (the value is bad, the entity is not) and
every other rule is `blocking`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from enrollment_platform.config import load_catalog, ruleset_text
from enrollment_platform.quality.dqdl import parse_ruleset
from enrollment_platform.quality.dqdl.ast import CompositeRule, Rule, RuleNode

SEVERITIES = ("blocking", "nullify", "warn")
VALUE_RULES = ("ColumnValues", "ColumnLength")


class RulesetError(ValueError):
    """A ruleset is valid DQDL but cannot be used on this dataset (unknown column, bad severity…)."""


@dataclass(frozen=True)
class DQRule:
    """One top-level rule of a dataset's ruleset."""

    dataset: str
    index: int  # 1-based position in the ruleset
    node: RuleNode
    severity: str

    @property
    def rule_id(self) -> str:
        return f"{self.dataset}.R{self.index}"

    @property
    def text(self) -> str:
        return self.node.text

    @property
    def columns(self) -> tuple[str, ...]:
        if isinstance(self.node, Rule) and self.node.rule_type not in ("RowCount", "CustomSql"):
            return tuple(p for p in self.node.parameters[:1] if "." not in p)
        return ()


def _dimension_datasets() -> set[str]:
    catalog = load_catalog()
    return {spec.dataset for spec in catalog.warehouse.values() if not spec.references}


def _severity(dataset: str, node: RuleNode) -> str:
    label = node.label("severity")
    if label is not None:
        if label not in SEVERITIES:
            raise RulesetError(
                f"rules/{dataset}.dqdl line {node.position.line}: severity {label!r} is not one of {SEVERITIES}"
            )
        return label
    primary_key = load_catalog().datasets[dataset].primary_key
    if (
        isinstance(node, Rule)
        and node.rule_type in VALUE_RULES
        and dataset in _dimension_datasets()
        and node.parameters[:1] != (primary_key,)
    ):
        return "nullify"
    return "blocking"


def build_rules(dataset: str, text: str) -> list[DQRule]:
    """Parse and check a ruleset for `dataset`."""
    ruleset = parse_ruleset(text, source=f"rules/{dataset}.dqdl")
    rules = [DQRule(dataset, i, node, _severity(dataset, node)) for i, node in enumerate(ruleset.rules, 1)]
    known = load_catalog().datasets[dataset].columns
    for rule in rules:
        for column in rule.columns:
            if column not in known:
                raise RulesetError(
                    f"rules/{dataset}.dqdl line {rule.node.position.line}: column {column!r} is not a column "
                    f"of {dataset} (known: {', '.join(known)})"
                )
        if rule.severity == "nullify" and not (isinstance(rule.node, Rule) and rule.node.rule_type in VALUE_RULES):
            raise RulesetError(
                f"rules/{dataset}.dqdl line {rule.node.position.line}: severity nullify needs a "
                f"ColumnValues or ColumnLength rule (it sets that column's bad values to NULL)"
            )
    return rules


@cache
def dataset_rules(dataset: str) -> tuple[DQRule, ...]:
    """The packaged ruleset of `dataset`, parsed once."""
    return tuple(build_rules(dataset, ruleset_text(dataset)))


def is_composite(rule: DQRule) -> bool:
    return isinstance(rule.node, CompositeRule)


def references_of(dataset: str, rules: tuple[DQRule, ...]) -> list[str]:
    """Datasets these rules' ReferentialIntegrity checks look up (their validated rows are the reference)."""
    names = []
    for rule in rules:
        if isinstance(rule.node, Rule) and rule.node.rule_type == "ReferentialIntegrity":
            table = rule.node.parameters[1].split(".", 1)[0]
            if table not in load_catalog().datasets:
                raise RulesetError(f"rules/{dataset}.dqdl line {rule.node.position.line}: {table!r} is not a dataset")
            if table not in names:
                names.append(table)
    return names


def referenced_datasets(dataset: str) -> list[str]:
    return references_of(dataset, dataset_rules(dataset))


def all_dataset_rules() -> dict[str, tuple[DQRule, ...]]:
    return {dataset: dataset_rules(dataset) for dataset in load_catalog().datasets}
