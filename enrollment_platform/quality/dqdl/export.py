"""Write a parsed ruleset back as plain DQDL text that AWS Glue Data Quality accepts.

``parse_ruleset(to_dqdl(r))`` equals ``r`` apart from positions, rule texts and the source name.
Variables are written back as declarations, but rules carry their substituted values (the parser
resolves ``$variable`` references). DefaultLabels are written once; labels a rule only has because of
them are not repeated on the rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from enrollment_platform.quality.dqdl.ast import (
    Between,
    Comparison,
    CompositeRule,
    Condition,
    DateExpression,
    Duration,
    FunctionCall,
    In,
    Keyword,
    Matches,
    Number,
    Operand,
    Rule,
    RuleNode,
    Ruleset,
    Size,
    String,
    VariableRef,
)
from enrollment_platform.quality.dqdl.lexer import quote
from enrollment_platform.quality.dqdl.validate import ALL_COLUMNS

BINARY_OPERATORS = ("+", "-", "*", "/")


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_operand(operand: Operand, nested: bool = False) -> str:
    """DQDL text of an operand; ``nested`` wraps arithmetic in parentheses."""
    match operand:
        case Number(text=text, value=value):
            return text or repr(value)
        case String(value=value):
            return quote(value)
        case Keyword(name=name):
            return name
        case Duration(amount=amount, unit=unit):
            return f"{_amount(amount)} {unit}"
        case Size(amount=amount, unit=unit):
            return f"{_amount(amount)} {unit}"
        case DateExpression(operator=None):
            return "now()"
        case DateExpression(operator=op, offset=offset):
            return f"(now() {op} {format_operand(offset)})"
        case FunctionCall(name=name, arguments=(left, right)) if name in BINARY_OPERATORS:
            text = f"{format_operand(left, True)} {name} {format_operand(right, True)}"
            return f"({text})" if nested else text
        case FunctionCall(name=name, arguments=arguments):
            return f"{name}({', '.join(format_operand(a) for a in arguments)})"
        case VariableRef(name=name):
            return f"${name}"
    raise TypeError(f"not a DQDL operand: {operand!r}")


def format_condition(condition: Condition) -> str:
    match condition:
        case Comparison(operator=op, operand=operand):
            return f"{op} {format_operand(operand)}"
        case Between(lower=lower, upper=upper, negated=negated):
            word = "not between" if negated else "between"
            return f"{word} {format_operand(lower, True)} and {format_operand(upper, True)}"
        case In(values=values, negated=negated):
            word = "not in" if negated else "in"
            return f"{word} [{', '.join(format_operand(v) for v in values)}]"
        case Matches(pattern=pattern, negated=negated):
            word = "not matches" if negated else "matches"
            return f"{word} {quote(pattern)}"
    raise TypeError(f"not a DQDL condition: {condition!r}")


def format_labels(labels: Sequence[tuple[str, str]], keyword: str = "labels") -> str:
    return f"{keyword}=[" + ", ".join(f"{quote(k)}={quote(v)}" for k, v in labels) + "]"


def _own_labels(labels: Sequence[tuple[str, str]], defaults: Sequence[tuple[str, str]]):
    default_pairs = set(defaults)
    return tuple(pair for pair in labels if pair not in default_pairs)


def _parameter(rule: Rule, value: str) -> str:
    if rule.rule_type == "AllStatistics" and value == ALL_COLUMNS:
        return ALL_COLUMNS
    return quote(value)


def format_rule(rule: Rule, defaults: Sequence[tuple[str, str]] = ()) -> str:
    """One rule (or analyzer) as DQDL, e.g. ``IsComplete "id" labels=["severity"="blocking"]``."""
    parts = [rule.rule_type, *(_parameter(rule, p) for p in rule.parameters)]
    if rule.condition is not None:
        parts.append(format_condition(rule.condition))
    if rule.where is not None:
        parts.append(f"where {quote(rule.where)}")
    if rule.threshold is not None:
        parts.append(f"with threshold {format_condition(rule.threshold)}")
    for key, value in rule.tags:
        parts.append(f"with {key} = {quote(value)}")
    labels = _own_labels(rule.labels, defaults)
    if labels:
        parts.append(format_labels(labels))
    return " ".join(parts)


def _operand_rule(node: RuleNode) -> str:
    if isinstance(node, Rule):
        return f"({format_rule(node)})"
    text = f"({_composite_body(node)})"
    if node.labels:
        text += " " + format_labels(node.labels)
    return text


def _composite_body(node: CompositeRule) -> str:
    return f" {node.operator} ".join(_operand_rule(r) for r in node.rules)


def format_node(node: RuleNode, defaults: Sequence[tuple[str, str]] = ()) -> str:
    """A top-level rule or composite rule as DQDL."""
    if isinstance(node, Rule):
        return format_rule(node, defaults)
    labels = _own_labels(node.labels, defaults)
    if labels:
        return f"({_composite_body(node)}) {format_labels(labels)}"
    return _composite_body(node)


def _format_value(value: object) -> str:
    if isinstance(value, str):
        return quote(value)
    return "[ " + ", ".join(quote(v) for v in value) + " ]"  # type: ignore[union-attr]


def _list_section(name: str, items: Sequence[str]) -> str:
    body = ",\n".join(f"    {item}" for item in items)
    return f"{name} = [\n{body}\n]"


def to_dqdl(ruleset: Ruleset) -> str:
    """Plain DQDL text for ``ruleset`` (Metadata, DataSources, variables, DefaultLabels, Rules, Analyzers)."""
    out: list[str] = []
    if ruleset.metadata:
        body = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in ruleset.metadata)
        out.append(f"Metadata = {{ {body} }}")
    if ruleset.data_sources:
        body = ", ".join(f"{quote(k)}: {_format_value(v)}" for k, v in ruleset.data_sources)
        out.append(f"DataSources = {{ {body} }}")
    for name, value in ruleset.variables:
        out.append(f"{name} = {_format_value(value)}")
    defaults = ruleset.default_labels
    if defaults:
        out.append(format_labels(defaults, "DefaultLabels"))
    if ruleset.rules or not ruleset.analyzers:
        out.append(_list_section("Rules", [format_node(n, defaults) for n in ruleset.rules]))
    if ruleset.analyzers:
        out.append(_list_section("Analyzers", [format_rule(a) for a in ruleset.analyzers]))
    return "\n".join(out) + "\n"
