"""DQDL (AWS Glue Data Quality Definition Language): parser, validator, linter and exporter.

parse_ruleset(text, source="<string>") -> Ruleset      raises DQDLSyntaxError(message, line, column)
check_ruleset(text, source="<string>") -> (Ruleset | None, [DQDLSyntaxError, ...])
lint_files(paths) -> ["FILE:LINE:COL: message", ...]   empty when every file is fine
to_dqdl(ruleset) -> str                                 plain DQDL that AWS Glue accepts
rule_type_table()                                       the rule types of rule_types.yaml
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

from enrollment_platform.quality.dqdl.ast import (
    Between,
    Comparison,
    CompositeRule,
    Condition,
    DateExpression,
    DQDLSyntaxError,
    Duration,
    FunctionCall,
    In,
    Keyword,
    Matches,
    Number,
    Operand,
    Position,
    Rule,
    RuleNode,
    Ruleset,
    Size,
    String,
    VariableRef,
)
from enrollment_platform.quality.dqdl.export import to_dqdl
from enrollment_platform.quality.dqdl.parser import check_ruleset, parse_ruleset
from enrollment_platform.quality.dqdl.validate import rule_type_table


def lint_files(paths: Iterable[str | PathLike[str]]) -> list[str]:
    """Check DQDL files; one ``FILE:LINE:COL: message`` per error (an unreadable file is an error at 1:1)."""
    problems: list[str] = []
    for path in paths:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"{name}:1:1: cannot read the file: {reason}")
            continue
        _ruleset, errors = check_ruleset(text, source=name)
        problems.extend(f"{name}:{e.line}:{e.column}: {e.message}" for e in errors)
    return problems


__all__ = [
    "Between",
    "Comparison",
    "CompositeRule",
    "Condition",
    "DQDLSyntaxError",
    "DateExpression",
    "Duration",
    "FunctionCall",
    "In",
    "Keyword",
    "Matches",
    "Number",
    "Operand",
    "Position",
    "Rule",
    "RuleNode",
    "Ruleset",
    "Size",
    "String",
    "VariableRef",
    "check_ruleset",
    "lint_files",
    "parse_ruleset",
    "rule_type_table",
    "to_dqdl",
]
