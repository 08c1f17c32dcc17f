"""The parsed form of a DQDL ruleset (AWS Glue Data Quality Definition Language).

The parser produces these objects; the rule engine, the pandera checks and the DQDL exporter consume them.
Every node keeps the position of its source text so errors and results point back at the ruleset file.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """1-based line and column in the ruleset text."""

    line: int
    column: int


# ---- operands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float
    text: str  # as written, e.g. "0", "-0.5", "1e3"


@dataclass(frozen=True)
class String:
    value: str  # unescaped


@dataclass(frozen=True)
class Keyword:
    """NULL, EMPTY or WHITESPACES_ONLY inside a ColumnValues condition."""

    name: str


@dataclass(frozen=True)
class Duration:
    amount: float
    unit: str  # "days" | "hours" | "minutes" (normalised to plural, lower case)


@dataclass(frozen=True)
class Size:
    amount: float
    unit: str  # "B" | "KB" | "MB" | "GB" | "TB"


@dataclass(frozen=True)
class DateExpression:
    """`now()` or `(now() - 3 days)`; `offset` is None for a bare now()."""

    operator: str | None = None  # "+" | "-"
    offset: Duration | None = None


@dataclass(frozen=True)
class FunctionCall:
    """Dynamic and arithmetic operands: avg(last(10)), multiply(1, 2), 0.9 * x, 10 + 10."""

    name: str  # "avg", "last", "multiply", "*", "+", "-", "/" ...
    arguments: tuple[Operand, ...]


@dataclass(frozen=True)
class VariableRef:
    name: str  # without the leading $


Operand = Number | String | Keyword | Duration | Size | DateExpression | FunctionCall | VariableRef


# ---- conditions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    operator: str  # "=", "!=", ">", ">=", "<", "<="
    operand: Operand


@dataclass(frozen=True)
class Between:
    """DQDL's between EXCLUDES both bounds: `x between 0 and 100` means 0 < x < 100."""

    lower: Operand
    upper: Operand
    negated: bool = False


@dataclass(frozen=True)
class In:
    values: tuple[Operand, ...]
    negated: bool = False


@dataclass(frozen=True)
class Matches:
    pattern: str
    negated: bool = False


Condition = Comparison | Between | In | Matches


# ---- rules ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule such as `ColumnValues "marks" >= 0 where "term = 'F24'" with threshold > 0.9`."""

    rule_type: str
    parameters: tuple[str, ...]  # column names and other quoted/unquoted parameters, unescaped
    condition: Condition | None
    position: Position
    text: str  # the rule's source text, exactly as written
    where: str | None = None
    threshold: Condition | None = None
    tags: tuple[tuple[str, str], ...] = ()  # `with KEY = VALUE` tags other than threshold
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str, default: str | None = None) -> str | None:
        return dict(self.labels).get(key, default)


@dataclass(frozen=True)
class CompositeRule:
    """`(rule) and (rule)` / `(rule) or (rule)`; operator is lower case."""

    operator: str
    rules: tuple[RuleNode, ...]
    position: Position
    text: str
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str, default: str | None = None) -> str | None:
        return dict(self.labels).get(key, default)


RuleNode = Rule | CompositeRule


@dataclass(frozen=True)
class Ruleset:
    rules: tuple[RuleNode, ...] = ()
    analyzers: tuple[Rule, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    data_sources: tuple[tuple[str, object], ...] = ()
    default_labels: tuple[tuple[str, str], ...] = ()
    variables: tuple[tuple[str, object], ...] = field(default=())
    source: str = "<string>"


class DQDLSyntaxError(ValueError):
    """A ruleset that does not parse or is not valid; carries the position of the fault."""

    def __init__(self, message: str, line: int, column: int, source: str = "<string>"):
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column
        self.source = source
