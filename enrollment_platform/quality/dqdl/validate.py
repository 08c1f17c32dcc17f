"""Semantic checks of DQDL rules against the rule-type table (``rule_types.yaml``).

The parser calls these for every rule and analyzer it builds. Each check returns plain messages; the
parser attaches the position (the start of the rule or section at fault) and raises or collects them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from enrollment_platform.quality.dqdl.ast import (
    Between,
    Comparison,
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
    Size,
    String,
    VariableRef,
)

MAX_LABELS = 10
MAX_LABEL_KEY = 128
MAX_LABEL_VALUE = 256
METADATA_KEYS = ("Version",)
DATA_SOURCE_KEYS = ("Primary", "AdditionalDataSources")
ALL_COLUMNS = "AllColumns"

_ORDERING = (">", ">=", "<", "<=")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_TIME_12H = re.compile(r"^(0?[1-9]|1[0-2]):[0-5]\d\s*(AM|PM|am|pm)$")
_TIME_24H = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")
_REFERENCE_COLUMNS = re.compile(r"^[^.{}]+\.(?:\{([^{}]+)\}|([^{}]+))$")


# ---- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnType:
    name: str
    description: str
    operands: frozenset[str]
    operators: frozenset[str]


@dataclass(frozen=True)
class Form:
    parameters: tuple[str, ...]  # kinds, with "?" (optional) or "*" (repeated) suffixes
    returns: str
    condition: str  # "required" | "none" | "optional"
    example: str

    @property
    def min_parameters(self) -> int:
        return sum(1 for p in self.parameters if not p.endswith(("?", "*")))

    @property
    def max_parameters(self) -> int | None:
        if any(p.endswith("*") for p in self.parameters):
            return None
        return len(self.parameters)

    def accepts(self, count: int) -> bool:
        top = self.max_parameters
        return self.min_parameters <= count and (top is None or count <= top)

    def kind_of(self, index: int) -> str:
        """The kind of the index-th parameter (without suffix)."""
        if index < len(self.parameters):
            return self.parameters[index].rstrip("?*")
        return self.parameters[-1].rstrip("?*")


@dataclass(frozen=True)
class RuleType:
    name: str
    forms: tuple[Form, ...]
    where: bool
    threshold: bool
    rule: bool
    analyzer: bool

    @property
    def example(self) -> str:
        return self.forms[0].example

    def form_for(self, count: int) -> Form | None:
        for form in self.forms:
            if form.accepts(count):
                return form
        return None


@dataclass(frozen=True)
class RuleTypeTable:
    parameter_kinds: dict[str, str]
    return_types: dict[str, ReturnType]
    rule_types: dict[str, RuleType]

    def suggest(self, name: str, candidates: Iterable[str] | None = None) -> str:
        names = list(self.rule_types if candidates is None else candidates)
        close = difflib.get_close_matches(name, names, n=1)
        if not close:
            lowered = {n.lower(): n for n in names}
            if name.lower() in lowered:
                close = [lowered[name.lower()]]
        return f" (did you mean {close[0]}?)" if close else ""


def _form(entry: dict, fallback: dict) -> Form:
    returns = entry.get("returns", fallback.get("returns"))
    condition = entry.get("condition", fallback.get("condition"))
    if condition is None:
        condition = "none" if returns == "BOOLEAN" else "required"
    return Form(
        parameters=tuple(entry.get("parameters", fallback.get("parameters", ()))),
        returns=returns,
        condition=condition,
        example=entry.get("example", fallback.get("example", "")),
    )


@lru_cache(maxsize=1)
def rule_type_table() -> RuleTypeTable:
    """The rule-type table, loaded once from the package data file ``rule_types.yaml``."""
    raw = yaml.safe_load(
        resources.files("enrollment_platform.quality.dqdl").joinpath("rule_types.yaml").read_text("utf-8")
    )
    return_types = {
        name: ReturnType(
            name,
            spec["description"],
            frozenset(spec.get("operands", ())),
            frozenset(spec.get("operators", ())),
        )
        for name, spec in raw["return_types"].items()
    }
    rule_types = {}
    for name, spec in raw["rule_types"].items():
        forms = tuple(_form(f, spec) for f in spec["forms"]) if "forms" in spec else (_form(spec, {}),)
        for form in forms:
            if form.returns not in return_types:
                raise ValueError(f"rule_types.yaml: {name} returns unknown type {form.returns!r}")
        rule_types[name] = RuleType(
            name=name,
            forms=forms,
            where=bool(spec.get("where", False)),
            threshold=bool(spec.get("threshold", False)),
            rule=bool(spec.get("rule", True)),
            analyzer=bool(spec.get("analyzer", False)),
        )
    return RuleTypeTable(dict(raw["parameter_kinds"]), return_types, rule_types)


# ---- operands ---------------------------------------------------------------------------------------


def operand_kind(operand: Operand) -> str:
    """number | string | date | keyword | duration | size | variable."""
    match operand:
        case Number() | FunctionCall():
            return "number"
        case String():
            return "string"
        case DateExpression():
            return "date"
        case Keyword():
            return "keyword"
        case Duration():
            return "duration"
        case Size():
            return "size"
        case VariableRef():
            return "variable"
    raise TypeError(f"not an operand: {operand!r}")


_KIND_WORDS = {
    "number": "a number",
    "string": "a string",
    "date": "a date",
    "keyword": "NULL/EMPTY/WHITESPACES_ONLY",
    "duration": "a duration",
    "size": "a size",
    "variable": "a variable",
}


def describe_operand(operand: Operand) -> str:
    from enrollment_platform.quality.dqdl.export import format_operand

    return f"{_KIND_WORDS[operand_kind(operand)]} ({format_operand(operand)})"


def condition_operator(condition: Condition) -> str:
    match condition:
        case Comparison(operator=op):
            return op
        case Between():
            return "between"
        case In():
            return "in"
        case Matches():
            return "matches"
    raise TypeError(f"not a condition: {condition!r}")


def condition_operands(condition: Condition) -> tuple[Operand, ...]:
    match condition:
        case Comparison(operand=operand):
            return (operand,)
        case Between(lower=lower, upper=upper):
            return (lower, upper)
        case In(values=values):
            return values
        case Matches(pattern=pattern):
            return (String(pattern),)
    raise TypeError(f"not a condition: {condition!r}")


def is_date_or_time(text: str) -> bool:
    text = text.strip()
    return bool(_DATE.match(text) or _TIME_12H.match(text) or _TIME_24H.match(text))


# ---- checks -----------------------------------------------------------------------------------------


def check_condition(rule_name: str, condition: Condition, return_type: ReturnType, example: str) -> list[str]:
    """Whether ``condition`` fits a rule measuring ``return_type``."""
    problems: list[str] = []
    op = condition_operator(condition)
    shown = ("not " if getattr(condition, "negated", False) else "") + op
    if op not in return_type.operators:
        problems.append(
            f"{rule_name} cannot use `{shown}`: it is compared with {return_type.description}; e.g. {example}"
        )
        return problems
    operands = condition_operands(condition)
    for operand in operands:
        kind = operand_kind(operand)
        if kind == "variable":
            continue  # reported where the variable is resolved
        if kind not in return_type.operands:
            problems.append(
                f"{rule_name} is compared with {return_type.description}; "
                f"{describe_operand(operand)} does not fit, e.g. {example}"
            )
            return problems
        if kind == "keyword" and (op in _ORDERING or op == "between"):
            problems.append(f"{operand.name} can only be used with =, != or in, not with `{shown}`")
            return problems
        if (
            return_type.name == "DATE"
            and isinstance(operand, String)
            and op != "matches"
            and not is_date_or_time(operand.value)
        ):
            problems.append(
                f"{rule_name} compares dates and times; {operand.value!r} is neither "
                '(write e.g. "2024-01-31", "9:30 AM", "21:45" or (now() - 1 days))'
            )
            return problems
    if isinstance(condition, Between):
        kinds = {_family(operand_kind(o)) for o in operands} - {"variable"}
        if len(kinds) > 1:
            problems.append(
                f"the bounds of between must be the same kind of value, not {describe_operand(operands[0])} "
                f"and {describe_operand(operands[1])}"
            )
    return problems


def _family(kind: str) -> str:
    return {"date": "string", "size": "number"}.get(kind, kind)


def list_kind_mismatch(values: Sequence[Operand]) -> int | None:
    """Index of the first list value whose kind differs from the ones before it, else None.

    NULL/EMPTY/WHITESPACES_ONLY mix with anything; dates mix with (date) strings; sizes with numbers.
    """
    family = None
    for index, value in enumerate(values):
        kind = operand_kind(value)
        if kind in ("keyword", "variable"):
            continue
        fam = _family(kind)
        if family is None:
            family = fam
        elif fam != family:
            return index
    return None


def check_threshold(rule_name: str, threshold: Condition) -> list[str]:
    example = "with threshold > 0.9"
    if isinstance(threshold, (Matches, In)):
        return [f"`with threshold` takes a comparison or between with numbers, e.g. {example}"]
    for operand in condition_operands(threshold):
        if operand_kind(operand) not in ("number", "variable"):
            return [
                f"`with threshold` of {rule_name} compares a number (the share of passing rows); "
                f"{describe_operand(operand)} does not fit, e.g. {example}"
            ]
    return []


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def describe_parameters(form: Form, table: RuleTypeTable) -> str:
    if not form.parameters:
        return "no parameters"
    parts = []
    for p in form.parameters:
        kind = p.rstrip("?*")
        text = table.parameter_kinds.get(kind, kind)
        if p.endswith("?"):
            text = f"optionally {text}"
        elif p.endswith("*"):
            text = f"more of them if needed ({kind})"
        parts.append(text)
    lo, hi = form.min_parameters, form.max_parameters
    if hi == lo:
        count = _plural(lo, "parameter")
    elif hi is None:
        count = f"{lo} or more parameters"
    else:
        count = f"{lo} to {hi} parameters"
    return f"{count}: " + "; ".join(parts)


def check_parameters(spec: RuleType, form: Form, parameters: Sequence[str]) -> list[str]:
    table = rule_type_table()
    problems: list[str] = []
    for index, value in enumerate(parameters):
        kind = form.kind_of(index)
        if kind in ("column", "columns") and value.strip() == "":
            problems.append(f"{spec.name}: the column name is empty; e.g. {form.example}")
        elif kind == "reference_columns":
            m = _REFERENCE_COLUMNS.match(value.strip())
            if not m:
                problems.append(
                    f"{spec.name}: {value!r} must name the reference dataset and column, "
                    f'e.g. "students.student_id" or "students.{{id,term}}"'
                )
            elif parameters:
                ref_cols = [c for c in (m.group(1) or m.group(2)).split(",")]
                own_cols = parameters[0].split(",")
                if len(ref_cols) != len(own_cols):
                    problems.append(
                        f"{spec.name} compares {_plural(len(own_cols), 'column')} "
                        f"with {_plural(len(ref_cols), 'reference column')}; give the same number"
                    )
        elif kind == "metric":
            watched = table.rule_types.get(value)
            if watched is None or not watched.analyzer or watched.name == "AllStatistics":
                problems.append(
                    f"DetectAnomalies watches a metric rule type such as RowCount or Completeness; "
                    f"{value!r} is not one{table.suggest(value) if watched is None else ''}"
                )
            else:
                rest = len(parameters) - 1
                wform = watched.form_for(rest)
                if wform is None:
                    problems.append(
                        f"DetectAnomalies of {watched.name} needs the parameters of {watched.name} "
                        f"({describe_parameters(watched.forms[0], table)}), got {rest}"
                    )
        if problems:
            break
    return problems


def check_rule(rule: Rule, section: str = "Rules") -> list[str]:
    """All problems with a parsed rule (Rules section) or analyzer (Analyzers section)."""
    table = rule_type_table()
    spec = table.rule_types.get(rule.rule_type)
    if spec is None:
        what = "rule type" if section == "Rules" else "analyzer type"
        return [f"unknown {what} `{rule.rule_type}`{table.suggest(rule.rule_type)}"]
    if section == "Analyzers":
        if not spec.analyzer:
            return [f"{spec.name} cannot be an analyzer: it gives pass/fail, not a metric; put it in Rules = [ ... ]"]
    elif not spec.rule:
        return [f"{spec.name} is an analyzer, not a rule: move it to Analyzers = [ ... ]"]

    count = len(rule.parameters)
    form = spec.form_for(count)
    if form is None:
        if len(spec.forms) == 1:
            wants = describe_parameters(spec.forms[0], table)
        else:
            wants = " or ".join(describe_parameters(f, table) for f in spec.forms)
        return [f"{spec.name} takes {wants}; got {count}, e.g. {spec.example}"]
    problems = check_parameters(spec, form, rule.parameters)
    if problems:
        return problems

    if section == "Rules":
        return_type = table.return_types[form.returns]
        if rule.condition is None and form.condition == "required":
            return [f"{spec.name} needs a condition, e.g. {form.example}"]
        if rule.condition is not None and form.condition == "none":
            return [f"{spec.name} takes no condition: it passes or fails on its own, e.g. {form.example}"]
        if rule.condition is not None:
            problems = check_condition(spec.name, rule.condition, return_type, form.example)
            if problems:
                return problems
    if rule.where is not None:
        if not spec.where:
            return [f"{spec.name} does not accept a where clause"]
        if rule.where.strip() == "":
            return [f'the where clause of {spec.name} is empty; give a SQL condition, e.g. where "marks > 0"']
    if rule.threshold is not None:
        if not spec.threshold:
            allowed = ", ".join(n for n, s in table.rule_types.items() if s.threshold)
            return [f"{spec.name} does not accept `with threshold` (only {allowed} do)"]
        problems = check_threshold(spec.name, rule.threshold)
    return problems


def check_labels(pairs: Sequence[tuple[str, str]], what: str = "labels") -> list[str]:
    """Problems with one labels=[...] or DefaultLabels=[...] list as written."""
    problems: list[str] = []
    if not pairs:
        return [f'{what} must hold at least one label, e.g. {what}=["severity"="blocking"]']
    seen: set[str] = set()
    for key, value in pairs:
        if key == "" or value == "":
            problems.append(f"{what}: a label key or value is empty")
        if len(key) > MAX_LABEL_KEY:
            problems.append(f"{what}: the label key is {len(key)} characters long; at most {MAX_LABEL_KEY}")
        if len(value) > MAX_LABEL_VALUE:
            problems.append(
                f"{what}: the value of label {key!r} is {len(value)} characters long; at most {MAX_LABEL_VALUE}"
            )
        if key in seen:
            problems.append(f"{what}: the label key {key!r} appears twice")
        seen.add(key)
    if len(seen) > MAX_LABELS:
        problems.append(f"{what}: {len(seen)} labels; at most {MAX_LABELS} are allowed")
    return problems


def merge_labels(defaults: Sequence[tuple[str, str]], own: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """DefaultLabels first, then the rule's own labels (which win on the same key)."""
    merged = dict(defaults)
    merged.update(own)
    return tuple(merged.items())


def check_merged_label_count(merged: Sequence[tuple[str, str]]) -> list[str]:
    if len(merged) > MAX_LABELS:
        return [f"this rule has {len(merged)} labels counting DefaultLabels; at most {MAX_LABELS} are allowed"]
    return []
