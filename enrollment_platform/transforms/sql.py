"""Small SQL text helpers shared by the engine backends and the warehouse twins."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def column_list(names) -> str:
    return ", ".join(quote_ident(n) for n in names)
