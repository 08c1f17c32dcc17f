"""The rule checks' verdicts on a table (a Parquet file or any DuckDB relation, e.g. the validated rows), read in
chunks where the rules allow: pandera judges chunk by chunk.

The table is read once, one chunk of rows at a time, only the columns the rules name. A rule that judges each row
on its own (IsComplete, ColumnValues, ColumnLength, ReferentialIntegrity against the referenced dataset's keys,
their `and`/`or`) judges each chunk. A rule that needs all rows at once (IsPrimaryKey, IsUnique, dataset-level
rules such as RowCount or Mean, CustomSql) judges the whole table, of which only its own columns are kept from the
chunks. At 10 M rows holding every rule's columns whole was the run's memory peak, growing with the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import duckdb
import polars as pl

from enrollment_platform.quality.dqdl.ast import CompositeRule, RuleNode
from enrollment_platform.quality.polars_rules import columns_read
from enrollment_platform.quality.rules import DQRule
from enrollment_platform.quality.sql_compiler import rule_judges_rows
from enrollment_platform.transforms.sql import quote_ident, quote_literal

CHUNK_ROWS = 5_000_000  # rows per chunk: pandera costs ~0.25 s per frame it validates, whatever its size (10 M
# rows: 2 M-row chunks 8.5 s, 5 M 6.1 s, whole 6.2 s, before polars read the chunks; the chunk bounds the memory)
SAMPLE_KEYS = 10
CROSS_ROW_RULES = ("IsPrimaryKey", "IsUnique")


@dataclass
class RuleOutcome:
    """How many rows of the file fail a rule (1 for a failed dataset-level rule), the first failing rows' keys,
    or why the rule could not be evaluated."""

    failed: int = 0
    sample_keys: list[str] = field(default_factory=list)
    unsupported: str | None = None


def judges_rows_alone(node: RuleNode) -> bool:
    """Whether a rule's verdict on a row depends on that row only (and on referenced datasets)."""
    if isinstance(node, CompositeRule):
        return all(judges_rows_alone(child) for child in node.rules)
    return node.rule_type not in CROSS_ROW_RULES


def judge_file(
    rules: list[DQRule],
    path: str,
    primary_key: str,
    references: Mapping[str, pl.DataFrame],
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, RuleOutcome]:
    """Every rule's outcome on the Parquet file at `path` (see `judge_relation`)."""
    with duckdb.connect() as con:
        return judge_relation(rules, con, f"read_parquet({quote_literal(path)})", primary_key, references, chunk_rows)


def judge_relation(
    rules: list[DQRule],
    con: duckdb.DuckDBPyConnection,
    relation: str,
    primary_key: str,
    references: Mapping[str, pl.DataFrame],
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, RuleOutcome]:
    """Every rule's outcome on the rows of `relation`, a DuckDB relation (pandera: `pandera_checks.failing_rows`)."""
    from enrollment_platform.quality.pandera_checks import rule_schema  # pandera loads here

    by_row = [r for r in rules if rule_judges_rows(r.node) and judges_rows_alone(r.node)]
    whole = [r for r in rules if r not in by_row]
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    row_columns, whole_columns = _columns(names, by_row, primary_key), _columns(names, whole, primary_key)
    outcomes = {rule.rule_id: RuleOutcome() for rule in rules}
    row_schema = rule_schema(by_row, references) if by_row else None
    kept_for_whole = []  # one read of the relation: the whole-table rules' columns are gathered chunk by chunk
    columns = list(dict.fromkeys([*(row_columns if by_row else []), *(whole_columns if whole else [])]))
    for chunk in _chunks(con, relation, columns, chunk_rows):
        if by_row:
            _judge(by_row, chunk.select(row_columns), references, row_schema, outcomes, primary_key)
        if whole:
            kept_for_whole.append(chunk.select(whole_columns))
    if whole:
        frame = pl.concat(kept_for_whole, rechunk=False)
        _judge(whole, frame, references, rule_schema(whole, references), outcomes, primary_key)
    return outcomes


def _judge(rules, frame: pl.DataFrame, references, schema, outcomes: dict[str, RuleOutcome], primary_key) -> None:
    from enrollment_platform.quality.pandera_checks import failing_rows

    for rule_id, found in failing_rows(rules, frame, references, schema).items():
        _add(outcomes[rule_id], found, frame, primary_key)


def _columns(names: list[str], rules: list[DQRule], primary_key: str) -> list[str]:
    """The columns the rules read and the key the samples show (every column when a rule may read any)."""
    read = columns_read(rule.node for rule in rules)
    return names if read is None else [c for c in names if c in read | {primary_key}]


def _chunks(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], rows: int) -> Iterator[pl.DataFrame]:
    """The relation's rows, `rows` at a time as Arrow batches; one empty frame when there are none."""
    reader = con.sql(f"SELECT {', '.join(quote_ident(c) for c in columns) or '*'} FROM {relation}").to_arrow_reader(
        rows
    )
    empty = True
    for batch in reader:
        empty = False
        yield pl.from_arrow(batch)
    if empty:
        yield pl.from_arrow(reader.schema.empty_table())


def _add(outcome: RuleOutcome, found: set[int] | str, frame: pl.DataFrame, primary_key: str) -> None:
    if isinstance(found, str):
        outcome.unsupported = found
        return
    failing = sorted(found)
    outcome.failed += len(failing)
    room = SAMPLE_KEYS - len(outcome.sample_keys)
    outcome.sample_keys += [str(frame[i, primary_key]) for i in failing[:room] if i < frame.height]
