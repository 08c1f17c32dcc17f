"""Hand-written recursive-descent parser for DQDL rulesets.

Grammar (informal; ``|`` alternatives, ``?`` optional, ``*`` repetition)::

    document    := statement+                      (each section at most once, in any order)
    statement   := "Metadata" "=" "{" STRING ":" STRING ("," ...)* "}"
                 | "DataSources" "=" "{" STRING ":" (STRING | "[" STRING,* "]") ("," ...)* "}"
                 | "DefaultLabels" "=" label_list
                 | "Rules" "=" "[" (rule_expr ("," rule_expr)*)? "]"
                 | "Analyzers" "=" "[" (analyzer ("," analyzer)*)? "]"
                 | NAME "=" (STRING | "[" STRING ("," STRING)* "]")            variable declaration
    rule_expr   := rule_operand (("and" | "or") rule_operand)*               one operator per level
    rule_operand:= "(" rule_expr ")" labels? | rule
    rule        := TYPE parameter* condition? ("where" text)? ("with" ("threshold" condition
                   | TAG condition))* labels?
    analyzer    := TYPE parameter*
    parameter   := ("of" | "and")? (STRING | NAME | $variable)
    condition   := ("=" | "!=" | ">" | ">=" | "<" | "<=") operand
                 | "not"? "between" operand "and" operand
                 | "not"? "in" ("[" operand ("," operand)* "]" | $variable)
                 | "not"? "matches" (STRING | $variable)
    operand     := term (("+" | "-") term)*
    term        := unary (("*" | "/") unary)*
    unary       := "-" NUMBER | primary
    primary     := NUMBER unit? | STRING | NULL | EMPTY | WHITESPACES_ONLY | $variable
                 | "now" "(" ")" | NAME "(" (operand ("," operand)*)? ")" | "(" operand ")"
    labels      := "labels" "=" label_list
    label_list  := "[" (STRING "=" STRING ("," ...)*)? "]"

Date arithmetic must be parenthesised: ``(now() - 3 days)``. ``and``/``AND``/``or``/``OR`` are accepted
in both cases; mixing ``and`` and ``or`` at one level needs parentheses.

Variables hold a string or a list of strings and must be declared before they are used; every
``$name`` is replaced by its value (strings are never interpolated: ``"select $id"`` stays as written).
DefaultLabels are merged into the labels of every top-level rule (the rule's own labels win).

Grammar faults raise at the offending token. Semantic faults (checked against ``rule_types.yaml`` by
``validate.py``) are reported at the start of the rule or section at fault; parsing carries on so that
``check_ruleset`` can report all of them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from enrollment_platform.quality.dqdl import validate
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
from enrollment_platform.quality.dqdl.lexer import EOF, IDENT, NUMBER, STRING, VARIABLE, Lexer, Token

SECTIONS = ("Metadata", "DataSources", "DefaultLabels", "Rules", "Analyzers")
COMPARISON_OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
KEYWORDS = ("NULL", "EMPTY", "WHITESPACES_ONLY")
AND_WORDS = ("and", "AND")
OR_WORDS = ("or", "OR")
OF_WORDS = ("of", "OF")
# Words that end a rule's parameter list (a column named like one of these must be quoted).
STOP_WORDS = frozenset(
    (
        *AND_WORDS,
        *OR_WORDS,
        *OF_WORDS,
        "not",
        "between",
        "in",
        "matches",
        "where",
        "with",
        "labels",
        *KEYWORDS,
    )
)
# Words that may follow a number without being its unit.
AFTER_NUMBER = frozenset((*AND_WORDS, *OR_WORDS, "where", "with", "labels"))
DURATION_UNITS = {
    "day": "days",
    "days": "days",
    "hour": "hours",
    "hours": "hours",
    "minute": "minutes",
    "minutes": "minutes",
}
SIZE_UNITS = {"b": "B", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB"}
_NESTED_VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


class Parser:
    def __init__(self, text: str, source: str = "<string>"):
        self.text = text
        self.source = source
        self.lexer = Lexer(text, source)
        self.tokens: list[Token] = []
        self.i = 0
        self.errors: list[DQDLSyntaxError] = []
        self.table = validate.rule_type_table()
        self.variables: dict[str, tuple[object, Token]] = {}
        # Semantic errors of the statement/rule being parsed: kept back until its grammar is known to be
        # fine, so a grammar fault is what gets reported for it.
        self.pending: list[DQDLSyntaxError] = []
        self.rule_starts: list[Token] = []

    # ---- token helpers --------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != EOF:
            self.i += 1
        return tok

    @property
    def last_end(self) -> int:
        return self.tokens[self.i - 1].end if self.i > 0 else 0

    def at(self, kind: str, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and (not words or tok.text in words)

    def at_word(self, *words: str) -> bool:
        return self.at(IDENT, *words)

    def fail(self, message: str, tok: Token) -> DQDLSyntaxError:
        return DQDLSyntaxError(message, tok.line, tok.column, self.source)

    def expect(self, kind: str, message: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise self.fail(f"{message}, found {tok.describe()}", tok)
        return self.advance()

    def report(self, message: str, line: int, column: int) -> None:
        self.errors.append(DQDLSyntaxError(message, line, column, self.source))

    def report_at(self, message: str, tok: Token) -> None:
        self.report(message, tok.line, tok.column)

    def semantic(self, message: str, tok: Token) -> None:
        """A semantic error, placed at the start of the rule being parsed (else at ``tok``)."""
        at = self.rule_starts[-1] if self.rule_starts else tok
        self.pending.append(DQDLSyntaxError(message, at.line, at.column, self.source))

    def flush(self) -> None:
        self.errors.extend(self.pending)
        self.pending.clear()

    # ---- document -------------------------------------------------------------------------------

    def parse(self) -> Ruleset | None:
        try:
            self.tokens = self.lexer.tokens()
            return self._document()
        except DQDLSyntaxError as exc:
            self.errors.append(exc)
            return None

    def _document(self) -> Ruleset:
        seen: dict[str, Token] = {}
        rules: tuple[RuleNode, ...] = ()
        analyzers: tuple[Rule, ...] = ()
        metadata: tuple[tuple[str, str], ...] = ()
        data_sources: tuple[tuple[str, object], ...] = ()
        default_labels: tuple[tuple[str, str], ...] = ()
        while not self.at(EOF):
            tok = self.peek()
            if tok.kind != IDENT:
                if seen:
                    raise self.fail(f"unexpected {tok.describe()} after the end of the ruleset", tok)
                raise self.fail(f"expected a section such as Rules = [ ... ], found {tok.describe()}", tok)
            if self.peek(1).kind != "=":
                after = self.peek(1)
                if tok.text in self.table.rule_types:
                    raise self.fail(f"{tok.text} is a rule: rules go inside Rules = [ ... ]", tok)
                if tok.text in SECTIONS:
                    raise self.fail(f"expected `=` after {tok.text}, found {after.describe()}", after)
                raise self.fail(
                    f"expected `=` after `{tok.text}` (a section such as Rules = [ ... ] or a variable "
                    f'such as {tok.text} = "value"), found {after.describe()}',
                    after,
                )
            if tok.text in SECTIONS:
                if tok.text in seen:
                    first = seen[tok.text]
                    self.semantic(f"the {tok.text} section appears twice (first on line {first.line})", tok)
                seen[tok.text] = tok
                self.advance()
                self.advance()
                if tok.text == "Rules":
                    rules = self._rules_section(tok)
                elif tok.text == "Analyzers":
                    analyzers = self._analyzers_section(tok)
                elif tok.text == "Metadata":
                    metadata = self._metadata_section(tok)
                elif tok.text == "DataSources":
                    data_sources = self._data_sources_section(tok)
                else:
                    default_labels = self._default_labels_section(tok)
            else:
                self._variable_declaration()
            self.flush()

        if not rules and not analyzers:
            empty = [seen[s] for s in ("Rules", "Analyzers") if s in seen]
            if empty:
                first = min(empty, key=lambda t: t.start)
                self.report_at(
                    f"{first.text} = [ ] is empty: a ruleset needs at least one rule or analyzer, "
                    'e.g. Rules = [ IsComplete "student_id" ]',
                    first,
                )
            else:
                self.report(
                    'the ruleset has no Rules = [ ... ] section, e.g. Rules = [ IsComplete "student_id" ]',
                    1,
                    1,
                )

        if default_labels:
            rules = tuple(self._apply_default_labels(node, default_labels) for node in rules)
        variables = tuple((name, value) for name, (value, _tok) in self.variables.items())
        return Ruleset(
            rules=rules,
            analyzers=analyzers,
            metadata=metadata,
            data_sources=data_sources,
            default_labels=default_labels,
            variables=variables,
            source=self.source,
        )

    def _apply_default_labels(self, node: RuleNode, defaults: tuple[tuple[str, str], ...]) -> RuleNode:
        merged = validate.merge_labels(defaults, node.labels)
        for problem in validate.check_merged_label_count(merged):
            self.report(problem, node.position.line, node.position.column)
        return replace(node, labels=merged)

    # ---- sections -------------------------------------------------------------------------------

    def _rules_section(self, section: Token) -> tuple[RuleNode, ...]:
        self.expect("[", "expected `[` after Rules =")
        nodes: list[RuleNode] = []
        if self.at("]"):
            self.advance()
            return ()
        while True:
            node = self._rule_expr()
            nodes.append(node)
            tok = self.peek()
            if tok.kind in (",", "]"):
                self.flush()
            if tok.kind == ",":
                self.advance()
                if self.at("]"):
                    raise self.fail("expected a rule after `,` (remove the trailing comma)", self.peek())
                continue
            if tok.kind == "]":
                self.advance()
                return tuple(nodes)
            raise self.fail(self._after_rule_message(tok, node), tok)

    def _after_rule_message(self, tok: Token, node: RuleNode) -> str:
        if tok.kind == IDENT and tok.text == "threshold":
            return "unexpected `threshold`: write `with threshold`, e.g. with threshold > 0.9"
        if tok.kind == IDENT and tok.text == "where":
            return "`where` must come right after the condition, before `with` and labels"
        if tok.kind == IDENT and tok.text in ("with", "labels"):
            return f"`{tok.text}` is out of place: the order is condition, where, with ..., labels=[...]"
        if tok.kind == IDENT and tok.text in self.table.rule_types:
            return f"expected `,` between rules, found {tok.describe()}"
        if tok.kind == ":":
            return 'unexpected `:`: times and paths are quoted strings, e.g. "9:30 AM", "21:45" or "s3://bucket/"'
        if (
            isinstance(node, Rule)
            and node.condition is None
            and (tok.kind in (NUMBER, STRING, "(") or (tok.kind == IDENT and self.peek(1).kind == "("))
        ):
            return f"expected a comparison (=, !=, >, >=, <, <=, between, in or matches) before {tok.describe()}"
        if tok.kind == EOF:
            return "expected `,` or `]` after the rule, found the end of the text (is a `]` missing?)"
        return f"expected `,` or `]` after the rule, found {tok.describe()}"

    def _analyzers_section(self, section: Token) -> tuple[Rule, ...]:
        self.expect("[", "expected `[` after Analyzers =")
        items: list[Rule] = []
        if self.at("]"):
            self.advance()
            return ()
        while True:
            items.append(self._analyzer())
            tok = self.peek()
            if tok.kind in (",", "]"):
                self.flush()
            if tok.kind == ",":
                self.advance()
                if self.at("]"):
                    raise self.fail("expected an analyzer after `,` (remove the trailing comma)", self.peek())
                continue
            if tok.kind == "]":
                self.advance()
                return tuple(items)
            if tok.kind in COMPARISON_OPERATORS or (
                tok.kind == IDENT and tok.text in ("not", "between", "in", "matches", "where", "with", "labels")
            ):
                raise self.fail(
                    f"analyzers take no condition, where, with or labels: found {tok.describe()} "
                    '(write e.g. Analyzers = [ Completeness "email" ])',
                    tok,
                )
            if tok.kind == IDENT and tok.text in self.table.rule_types:
                raise self.fail(f"expected `,` between analyzers, found {tok.describe()}", tok)
            raise self.fail(f"expected `,` or `]` after the analyzer, found {tok.describe()}", tok)

    def _analyzer(self) -> Rule:
        tok = self.peek()
        if tok.kind != IDENT or tok.text in STOP_WORDS:
            raise self.fail(f"expected an analyzer type such as Completeness, found {tok.describe()}", tok)
        self.advance()
        self.rule_starts.append(tok)
        try:
            parameters = self._parameters(tok.text, composite_allowed=False)
        finally:
            self.rule_starts.pop()
        rule = Rule(
            rule_type=tok.text,
            parameters=parameters,
            condition=None,
            position=Position(tok.line, tok.column),
            text=self.text[tok.start : self.last_end],
        )
        for problem in validate.check_rule(rule, "Analyzers"):
            self.semantic(problem, tok)
        return rule

    def _brace_entries(self, section: Token) -> list[tuple[Token, object, Token]]:
        self.expect("{", f"expected `{{` after {section.text} =")
        if self.at("}"):
            raise self.fail(
                f"{section.text} = {{ }} is empty; write e.g. {_section_example(section.text)}", self.peek()
            )
        entries: list[tuple[Token, object, Token]] = []
        while True:
            key = self.expect(STRING, f'expected a quoted key such as "Version" in {section.text}')
            self.expect(":", f"expected `:` after the key {key.text}")
            value_tok = self.peek()
            if self.at(STRING):
                value: object = self.advance().value
            elif self.at("["):
                value = self._string_list(f"{section.text} {key.text}")
            else:
                raise self.fail(
                    f"expected a quoted value or a list for {key.text}, found {value_tok.describe()}",
                    value_tok,
                )
            entries.append((key, value, value_tok))
            if self.at(","):
                self.advance()
                continue
            self.expect("}", f"expected `,` or `}}` in {section.text}")
            return entries

    def _metadata_section(self, section: Token) -> tuple[tuple[str, str], ...]:
        out: dict[str, str] = {}
        for key, value, _value_tok in self._brace_entries(section):
            if key.value not in validate.METADATA_KEYS:
                self.semantic(f"unknown Metadata key {key.text}; allowed: {', '.join(validate.METADATA_KEYS)}", section)
            elif key.value in out:
                self.semantic(f"the Metadata key {key.text} appears twice", section)
            elif not isinstance(value, str):
                self.semantic(f"Metadata {key.text} takes a quoted string", section)
            else:
                out[key.value] = value
        return tuple(out.items())

    def _data_sources_section(self, section: Token) -> tuple[tuple[str, object], ...]:
        out: dict[str, object] = {}
        for key, value, _value_tok in self._brace_entries(section):
            if key.value not in validate.DATA_SOURCE_KEYS:
                self.semantic(
                    f"unknown DataSources key {key.text}; allowed: {', '.join(validate.DATA_SOURCE_KEYS)}",
                    section,
                )
            elif key.value in out:
                self.semantic(f"the DataSources key {key.text} appears twice", section)
            elif key.value == "Primary" and not isinstance(value, str):
                self.semantic('DataSources "Primary" takes one quoted name', section)
            elif key.value == "AdditionalDataSources" and isinstance(value, str):
                self.semantic('DataSources "AdditionalDataSources" takes a list, e.g. [ "ref-table" ]', section)
            else:
                out[key.value] = value
        return tuple(out.items())

    def _default_labels_section(self, section: Token) -> tuple[tuple[str, str], ...]:
        pairs = self._label_list("DefaultLabels")
        for problem in validate.check_labels(pairs, "DefaultLabels"):
            self.semantic(problem, section)
        return tuple(dict(pairs).items())

    def _string_list(self, what: str) -> tuple[str, ...]:
        self.expect("[", f"expected `[` for {what}")
        values: list[str] = []
        if self.at("]"):
            raise self.fail(f"the list for {what} is empty", self.peek())
        while True:
            values.append(self.expect(STRING, f"expected a quoted string in the list for {what}").value)
            if self.at(","):
                self.advance()
                continue
            self.expect("]", f"expected `,` or `]` in the list for {what}")
            return tuple(values)

    def _variable_declaration(self) -> None:
        name = self.advance()
        self.advance()  # "="
        value_tok = self.peek()
        hint = ""
        close = self.table.suggest(name.text, SECTIONS)
        if close:
            hint = f"; is `{name.text}` meant to be a section{close}"
        value: object
        if value_tok.kind == STRING:
            value = self.advance().value
        elif value_tok.kind == "[":
            self.advance()
            items: list[str] = []
            if self.at("]"):
                raise self.fail(f"the list for variable `{name.text}` is empty", self.peek())
            while True:
                item = self.peek()
                if item.kind != STRING:
                    raise self.fail(
                        f'a variable\'s list holds quoted strings, e.g. {name.text} = ["a", "b"]; '
                        f"found {item.describe()}{hint}",
                        item,
                    )
                items.append(self.advance().value)
                if self.at(","):
                    self.advance()
                    continue
                self.expect("]", f"expected `,` or `]` in the list for variable `{name.text}`")
                break
            value = tuple(items)
        elif value_tok.kind == VARIABLE:
            raise self.fail(f"variable `{name.text}` cannot be set to another variable ({value_tok.text})", value_tok)
        else:
            raise self.fail(
                f'a variable holds a quoted string or a list of quoted strings, e.g. {name.text} = "value"; '
                f"found {value_tok.describe()}{hint}",
                value_tok,
            )
        if not name.text[0].isalpha():
            self.semantic(f"variable names must start with a letter: `{name.text}`", name)
        if name.text in self.variables:
            first = self.variables[name.text][1]
            self.semantic(f"variable `{name.text}` is already defined on line {first.line}", name)
            return
        texts = [value] if isinstance(value, str) else list(value)
        nested = [m.group() for t in texts for m in _NESTED_VARIABLE.finditer(t)]
        if nested:
            self.semantic(
                f"variable `{name.text}` refers to {nested[0]}: variables cannot refer to other variables",
                name,
            )
        self.variables[name.text] = (value, name)

    # ---- variables ------------------------------------------------------------------------------

    def _variable(self, tok: Token, want: str) -> object | None:
        """The value of variable ``tok``; want is "string" or "list". Reports and returns None on error."""
        entry = self.variables.get(tok.value)
        if entry is None:
            later = any(
                t.kind == IDENT and t.text == tok.value and self.peek_at(k + 1).kind == "="
                for k, t in enumerate(self.tokens)
                if t.start > tok.start
            )
            where = " (it is declared further down; declare it before use)" if later else ""
            self.semantic(f"variable ${tok.value} is not defined{where}", tok)
            return None
        value = entry[0]
        if want == "string" and not isinstance(value, str):
            self.semantic(f"variable ${tok.value} holds a list; a string is needed here (lists go with `in`)", tok)
            return None
        if want == "list" and isinstance(value, str):
            self.semantic(f'variable ${tok.value} holds a string; `in` needs a list such as ["a", "b"]', tok)
            return None
        return value

    def peek_at(self, index: int) -> Token:
        return self.tokens[min(index, len(self.tokens) - 1)]

    # ---- rules ----------------------------------------------------------------------------------

    def _rule_expr(self) -> RuleNode:
        start = self.peek()
        items = [self._rule_operand()]
        operator: str | None = None
        while self.at_word(*AND_WORDS, *OR_WORDS):
            tok = self.advance()
            op = tok.text.lower()
            if operator is not None and op != operator:
                raise self.fail(
                    f"`{operator}` and `{op}` cannot be mixed without parentheses, e.g. (A) and ((B) or (C))",
                    tok,
                )
            operator = op
            items.append(self._rule_operand())
        if operator is None:
            return items[0]
        return CompositeRule(
            operator=operator,
            rules=tuple(items),
            position=Position(start.line, start.column),
            text=self.text[start.start : self.last_end],
        )

    def _rule_operand(self) -> RuleNode:
        if not self.at("("):
            return self._rule()
        open_tok = self.advance()
        inner = self._rule_expr()
        self.expect(")", "expected `)` to close the `(` of this rule" if isinstance(inner, Rule) else "expected `)`")
        labels_tok = self.peek()
        self.rule_starts.append(open_tok)
        try:
            labels = self._labels_opt()
        finally:
            self.rule_starts.pop()
        span = dict(position=Position(open_tok.line, open_tok.column), text=self.text[open_tok.start : self.last_end])
        if labels is None:
            return replace(inner, **span) if isinstance(inner, CompositeRule) else inner
        duplicate = {k for k, _ in labels} & {k for k, _ in inner.labels}
        if duplicate:
            self.semantic(f"label {sorted(duplicate)[0]!r} is given both inside and after the parentheses", labels_tok)
        return replace(inner, labels=tuple(dict((*inner.labels, *labels)).items()), **span)

    def _rule(self) -> Rule:
        tok = self.peek()
        if tok.kind != IDENT or tok.text in STOP_WORDS:
            raise self.fail(f"expected a rule type such as IsComplete, found {tok.describe()}", tok)
        self.advance()
        self.rule_starts.append(tok)
        try:
            return self._rule_rest(tok)
        finally:
            self.rule_starts.pop()

    def _rule_rest(self, tok: Token) -> Rule:
        parameters = self._parameters(tok.text, composite_allowed=True)
        condition = self._condition_opt()
        where = None
        if self.at_word("where"):
            self.advance()
            where_tok = self.peek()
            if where_tok.kind == STRING:
                where = self.advance().value
            elif where_tok.kind == VARIABLE:
                self.advance()
                value = self._variable(where_tok, "string")
                where = value if isinstance(value, str) else f"${where_tok.value}"
            else:
                raise self.fail(
                    f'`where` needs a quoted SQL condition, e.g. where "marks > 0"; found {where_tok.describe()}',
                    where_tok,
                )
        threshold: Condition | None = None
        thresholds = 0
        tags: list[tuple[str, str]] = []
        problems: list[str] = []
        while self.at_word("with"):
            self.advance()
            name = self.peek()
            if name.kind != IDENT:
                raise self.fail(f"expected `threshold` or a tag name after `with`, found {name.describe()}", name)
            self.advance()
            cond_tok = self.peek()
            cond = self._condition_opt()
            if name.text == "threshold":
                if cond is None:
                    raise self.fail(
                        f"expected a condition after `with threshold`, e.g. with threshold > 0.9; "
                        f"found {cond_tok.describe()}",
                        cond_tok,
                    )
                thresholds += 1
                if thresholds == 2:
                    problems.append("`with threshold` is given twice; a rule takes one threshold")
                threshold = threshold or cond
                continue
            if cond is None:
                raise self.fail(
                    f'expected `= "value"` after the tag `{name.text}`, found {cond_tok.describe()}', cond_tok
                )
            if isinstance(cond, Comparison) and cond.operator == "=" and isinstance(cond.operand, (String, Number)):
                value = cond.operand.value if isinstance(cond.operand, String) else cond.operand.text
                if any(k == name.text for k, _ in tags):
                    problems.append(f"the tag `{name.text}` is given twice")
                tags.append((name.text, value))
            else:
                problems.append(f'the tag `{name.text}` takes `= "value"`: tags only support the equality operator')
        labels = self._labels_opt()
        if self.at_word("where", "with") and labels is not None:
            raise self.fail(f"`{self.peek().text}` must come before labels=[...]", self.peek())
        rule = Rule(
            rule_type=tok.text,
            parameters=parameters,
            condition=condition,
            position=Position(tok.line, tok.column),
            text=self.text[tok.start : self.last_end],
            where=where,
            threshold=threshold,
            tags=tuple(tags),
            labels=labels or (),
        )
        for problem in validate.check_rule(rule, "Rules") + problems:
            self.semantic(problem, tok)
        return rule

    def _parameters(self, rule_type: str, composite_allowed: bool) -> tuple[str, ...]:
        """Parameters up to the condition. An unquoted rule-type name ends them (a `,` is probably
        missing) unless it follows `of` or belongs to DetectAnomalies, whose first parameter names one."""
        values: list[str] = []
        after_of = False
        while True:
            tok = self.peek()
            if (
                tok.kind == IDENT
                and tok.text in self.table.rule_types
                and not after_of
                and rule_type != "DetectAnomalies"
            ):
                break
            after_of = False
            if tok.kind == IDENT and tok.text in OF_WORDS:
                nxt = self.peek(1)
                if not self._is_parameter(nxt):
                    raise self.fail(f"expected a column or parameter after `{tok.text}`, found {nxt.describe()}", nxt)
                self.advance()
                after_of = True
                continue
            if tok.kind == IDENT and tok.text in AND_WORDS:
                nxt = self.peek(1)
                if not self._is_parameter(nxt) or (
                    composite_allowed and nxt.kind == IDENT and nxt.text in self.table.rule_types
                ):
                    break
                self.advance()
                continue
            if not self._is_parameter(tok) or (tok.kind == IDENT and self.peek(1).kind == "("):
                break
            self.advance()
            if tok.kind == VARIABLE:
                value = self._variable(tok, "string")
                values.append(value if isinstance(value, str) else tok.text)
            else:
                values.append(tok.value)
        return tuple(values)

    @staticmethod
    def _is_parameter(tok: Token) -> bool:
        return tok.kind in (STRING, VARIABLE) or (tok.kind == IDENT and tok.text not in STOP_WORDS)

    # ---- labels ---------------------------------------------------------------------------------

    def _labels_opt(self) -> tuple[tuple[str, str], ...] | None:
        if not (self.at_word("labels") and self.peek(1).kind == "="):
            return None
        start = self.advance()
        self.advance()
        pairs = self._label_list("labels")
        for problem in validate.check_labels(pairs, "labels"):
            self.semantic(problem, start)
        return tuple(dict(pairs).items())

    def _label_list(self, what: str) -> list[tuple[str, str]]:
        example = f'{what}=["severity"="blocking"]'
        self.expect("[", f"expected `[` after {what} =, e.g. {example}")
        pairs: list[tuple[str, str]] = []
        if self.at("]"):
            self.advance()
            return pairs
        while True:
            key = self.expect(STRING, f"label keys and values are quoted strings, e.g. {example}")
            self.expect("=", f"expected `=` after the label key {key.text}, e.g. {example}")
            value = self.expect(STRING, f"label keys and values are quoted strings, e.g. {example}")
            pairs.append((key.value, value.value))
            if self.at(","):
                self.advance()
                continue
            self.expect("]", f"expected `,` or `]` in {what}")
            return pairs

    # ---- conditions -----------------------------------------------------------------------------

    def _condition_opt(self) -> Condition | None:
        tok = self.peek()
        if tok.kind in COMPARISON_OPERATORS:
            self.advance()
            return Comparison(tok.kind, self._operand())
        negated = False
        if tok.kind == IDENT and tok.text == "not":
            self.advance()
            negated = True
            tok = self.peek()
            if not (tok.kind == IDENT and tok.text in ("between", "in", "matches")):
                raise self.fail(f"expected `between`, `in` or `matches` after `not`, found {tok.describe()}", tok)
        if tok.kind != IDENT:
            return None
        if tok.text == "between":
            self.advance()
            lower = self._operand()
            and_tok = self.peek()
            if not (and_tok.kind == IDENT and and_tok.text in AND_WORDS):
                raise self.fail(
                    f"expected `and` between the bounds, e.g. between 0 and 100; found {and_tok.describe()}",
                    and_tok,
                )
            self.advance()
            upper_tok = self.peek()
            upper = self._operand()
            kinds = {validate._family(validate.operand_kind(o)) for o in (lower, upper)} - {
                "variable",
                "keyword",
            }
            if len(kinds) > 1:
                raise self.fail(
                    "both bounds of between must be the same kind of value, not "
                    f"{validate.describe_operand(lower)} and {validate.describe_operand(upper)}",
                    upper_tok,
                )
            return Between(lower, upper, negated)
        if tok.text == "in":
            self.advance()
            return In(self._in_values(), negated)
        if tok.text == "matches":
            self.advance()
            pat = self.peek()
            if pat.kind == STRING:
                self.advance()
                return Matches(pat.value, negated)
            if pat.kind == VARIABLE:
                self.advance()
                value = self._variable(pat, "string")
                return Matches(value if isinstance(value, str) else pat.text, negated)
            raise self.fail(
                f'`matches` needs a quoted regular expression, e.g. matches "[A-Z]+"; found {pat.describe()}',
                pat,
            )
        if negated:  # pragma: no cover - guarded above
            raise self.fail("expected `between`, `in` or `matches` after `not`", tok)
        return None

    def _in_values(self) -> tuple[Operand, ...]:
        tok = self.peek()
        if tok.kind == VARIABLE:
            self.advance()
            value = self._variable(tok, "list")
            if value is None:
                return (VariableRef(tok.value),)
            return tuple(String(v) for v in value)  # type: ignore[union-attr]
        if tok.kind != "[":
            raise self.fail(f'expected a list after `in`, e.g. in ["a", "b"]; found {tok.describe()}', tok)
        self.advance()
        if self.at("]"):
            raise self.fail('the list after `in` is empty; write e.g. in ["a", "b"]', self.peek())
        values: list[Operand] = []
        value_toks: list[Token] = []
        while True:
            value_toks.append(self.peek())
            values.append(self._operand())
            if self.at(","):
                self.advance()
                continue
            self.expect("]", "expected `,` or `]` in the list")
            break
        bad = validate.list_kind_mismatch(values)
        if bad is not None:
            raise self.fail(
                f"a list cannot mix kinds of values: {validate.describe_operand(values[bad])} "
                "after values of another kind",
                value_toks[bad],
            )
        return tuple(values)

    # ---- operands -------------------------------------------------------------------------------

    def _operand(self, in_parens: bool = False) -> Operand:
        left = self._term()
        while self.at("+") or self.at("-"):
            op = self.advance()
            if isinstance(left, DateExpression):
                if not in_parens:
                    raise self.fail(f"date arithmetic must be in parentheses, e.g. (now() {op.text} 1 days)", op)
                if left.operator is not None:
                    raise self.fail("a date takes one offset, e.g. (now() - 3 days)", op)
                right_tok = self.peek()
                right = self._term()
                if not isinstance(right, Duration):
                    raise self.fail(
                        "the offset of now() needs a duration with a unit, e.g. "
                        f"(now() {op.text} 3 days); found {right_tok.describe()}",
                        right_tok,
                    )
                left = DateExpression(op.text, right)
                continue
            right = self._term()
            left = self._arithmetic(op, left, right)
        return left

    def _term(self) -> Operand:
        left = self._unary()
        while self.at("*") or self.at("/"):
            op = self.advance()
            right = self._unary()
            left = self._arithmetic(op, left, right)
        return left

    def _arithmetic(self, op: Token, left: Operand, right: Operand) -> Operand:
        for side in (left, right):
            if validate.operand_kind(side) != "number":
                raise self.fail(f"`{op.text}` works on numbers only, not on {validate.describe_operand(side)}", op)
        return FunctionCall(op.text, (left, right))

    def _unary(self) -> Operand:
        if self.at("-"):
            minus = self.advance()
            tok = self.peek()
            if tok.kind != NUMBER:
                raise self.fail(f"expected a number after `-`, found {tok.describe()}", tok)
            self.advance()
            return self._number_with_unit(tok, negative=True, minus=minus)
        return self._primary()

    def _primary(self) -> Operand:
        tok = self.peek()
        if tok.kind == NUMBER:
            self.advance()
            return self._number_with_unit(tok)
        if tok.kind == STRING:
            self.advance()
            return String(tok.value)
        if tok.kind == VARIABLE:
            self.advance()
            value = self._variable(tok, "string")
            return String(value) if isinstance(value, str) else VariableRef(tok.value)
        if tok.kind == "(":
            self.advance()
            inner = self._operand(in_parens=True)
            self.expect(")", "expected `)`")
            return inner
        if tok.kind == IDENT:
            if tok.text in KEYWORDS:
                self.advance()
                return Keyword(tok.text)
            if self.peek(1).kind == "(":
                self.advance()
                self.advance()
                if tok.text == "now":
                    self.expect(")", "now() takes no arguments: expected `)`")
                    return DateExpression()
                arguments: list[Operand] = []
                if not self.at(")"):
                    while True:
                        arguments.append(self._operand())
                        if self.at(","):
                            self.advance()
                            continue
                        break
                self.expect(")", f"expected `,` or `)` in {tok.text}(...)")
                return FunctionCall(tok.text, tuple(arguments))
            if tok.text == "now":
                raise self.fail("write now() with parentheses", tok)
        raise self.fail(f"expected a value (a number, a quoted string, now(), ...), found {tok.describe()}", tok)

    def _number_with_unit(self, tok: Token, negative: bool = False, minus: Token | None = None) -> Operand:
        text = ("-" if negative else "") + tok.text
        value = float(text)
        unit = self.peek()
        if unit.kind != IDENT or unit.text in AFTER_NUMBER:
            return Number(value, text)
        if unit.text.lower() in DURATION_UNITS:
            self.advance()
            if negative:
                raise self.fail("a duration cannot be negative", minus or tok)
            return Duration(value, DURATION_UNITS[unit.text.lower()])
        if unit.text.lower() in SIZE_UNITS:
            self.advance()
            if negative:
                raise self.fail("a size cannot be negative", minus or tok)
            return Size(value, SIZE_UNITS[unit.text.lower()])
        if unit.text in self.table.rule_types:
            raise self.fail(f"expected `,` between rules, found {unit.describe()}", unit)
        if unit.text == "threshold":
            raise self.fail("unexpected `threshold`: write `with threshold`, e.g. with threshold > 0.9", unit)
        raise self.fail(
            f"unknown unit `{unit.text}` after {text}: durations use days, hours or minutes, sizes B, KB, MB, GB or TB",
            unit,
        )


def _section_example(name: str) -> str:
    return {
        "Metadata": 'Metadata = { "Version": "1.0" }',
        "DataSources": 'DataSources = { "Primary": "enrollments" }',
    }.get(name, f"{name} = {{ ... }}")


def check_ruleset(text: str, source: str = "<string>") -> tuple[Ruleset | None, list[DQDLSyntaxError]]:
    """Parse and validate; return the ruleset (None after a grammar error) and every error, in order."""
    parser = Parser(text, source)
    ruleset = parser.parse()
    errors = sorted(parser.errors, key=lambda e: (e.line, e.column))
    return ruleset, errors


def parse_ruleset(text: str, source: str = "<string>") -> Ruleset:
    """Parse a DQDL ruleset; raise DQDLSyntaxError (1-based line and column) at the first fault."""
    ruleset, errors = check_ruleset(text, source)
    if errors:
        raise errors[0]
    assert ruleset is not None
    return ruleset
