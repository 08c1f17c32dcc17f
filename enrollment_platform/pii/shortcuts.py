"""Exact short-cuts of the detector, evaluated in SQL: cells whose detections are known without Python.

Most candidate cells have one of a few shapes (an SSN, phone or e-mail column; a template note quoting one of
them; a numeric id or hex token that only looks like a phone number to the prefilter). For each shape below the
outcome of `Detector.find` is proven, so the SQL engine can count or redact those cells itself and hand Python
only the rest. Results are identical to running the detector on every candidate cell.

The proofs hold for the detector of the packaged policy only: `shortcuts_for` returns None (everything goes to
Python) unless the detector's entities (patterns, validators, options, prefilters, order) are exactly the ones
proven, checked by a digest. After changing the entities in pii_policy.yaml, re-check the proofs below and the
equivalence tests (test_pii_shortcuts.py), then update `PROVEN_DIGEST`.

Proofs. Every pattern is wrapped in `(?<![^\\W_])` and `(?![^\\W_])`: no letter or digit may touch a match.

1. No entity (`NONE`): a cell of ASCII letters and digits only, unless it is 9 to 19 digits or "N" and 10
   digits. In such a cell a match can start only at 0 and end only at its end, so it must be the whole cell.
   Whole-cell matches of a letters-and-digits string: a card is 13-19 digits, an SSN 9 (no separator), a US
   phone 10 or 11 (the country-code form needs "+" or "-"), a SEVIS id "N" and 10 digits; e-mail needs "@",
   IP addresses "." or ":", every date form a separator ("-", "/", ".", " "), "+" numbers a "+". So there is none.

2. One entity (`SHAPES`): a cell `P X S` where X is a token of a shape below, P is empty or letters and spaces
   ending with a space, S is empty or a space then letters and spaces (a whole-cell value has P = S = "").
   Then `find` returns exactly one span, X, of the shape's entity, so `entities_in` is {entity} and `redact`
   gives P + "[ENTITY]" + S:
   - The entity finds X: X's first character is preceded by nothing or a space, its last is followed by nothing
     or a space; P and S hold no digit, "@", "+" or "(", so no match of that entity starts before X. The
     leftmost match at X's start is X itself (SSN: 3-2-4 digits; phone: the country-code alternative needs 11+
     digits or a leading "+1"/"1", and "+1 A E L" matches as country 1; e-mail: the greedy first try of local
     part, labels and top-level domain already succeeds) and the validator accepts it: the token's regex
     encodes the SSN area/group/serial rules and the numbering-plan rules (area and exchange 2-9, area not
     N11); the exceptions send the published sample SSNs, same-digit SSNs and local parts over 64 characters
     to Python. The entity's own prefilter matches X. No later match exists (S has no digit, "@" or "+").
   - No other span survives: a span inside X is shorter than X, or as long and of an entity listed after
     (a card needs 13 digits; an SSN is never a phone's or e-mail's whole span). A span inside P or S needs a
     digit, "@" or ":", which they lack. A span crossing into P or S must take the space between them and X:
     only dates written "May 21, 2021"/"21 May 2021" put a space next to letters, and they need a 1-2 digit day
     followed by "," or " " right after the month (no token starts like that) and a 4-digit year (S has none).
     Every other pattern puts only digits or separators next to a space, and P and S hold no digit.

3. Column classification samples: when no cell of a column passes the combined RE2 prefilter, no value of it
   holds an entity, so classifying a sample of it finds nothing. (Each entity's Python prefilter gates its
   search and is, as RE2 evaluates it, matched by the same cells or fewer: "$" before a final newline is also
   matched by the next alternative `[^0-9A-Za-z]`; RE2's case folding of month names is wider than Python's
   ASCII one. The custom SEVIS pattern contains its own prefilter.)
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enrollment_platform.pii.detectors import Detector
from enrollment_platform.transforms.sql import quote_literal

PROVEN_DIGEST = "53745c66384767e5a259532070dd8e7cbc4b04ed33d80253cdcf53f7e7e3c08a"

# Cells of ASCII letters and digits hold no entity, except these.
ALNUM = "[0-9A-Za-z]+"
ALNUM_EXCEPT = r"[0-9]{9,19}|N[0-9]{10}"

# Context allowed around a token: P before it, S after it.
BEFORE = "(?:[A-Za-z ]* )?"
AFTER = "(?: [A-Za-z ]*)?"

# US numbering plan: area 2-9 and not N11, exchange 2-9.
_AREA = r"[2-9](?:[02-9][0-9]|1[02-9])"
_EXCHANGE = r"[2-9][0-9]{2}"
_LINE = r"[0-9]{4}"
PHONE_TOKEN = "|".join(
    [
        f"{_AREA}-{_EXCHANGE}-{_LINE}",
        rf"{_AREA}\.{_EXCHANGE}\.{_LINE}",
        f"{_AREA}{_EXCHANGE}{_LINE}",
        rf"\({_AREA}\) {_EXCHANGE}-{_LINE}",
        rf"\+1 {_AREA} {_EXCHANGE} {_LINE}",
    ]
)
# SSN: area 001-899 but 666, group not 00, serial not 0000.
SSN_TOKEN = (
    r"(?:0(?:0[1-9]|[1-9][0-9])|[1-57-8][0-9]{2}|6(?:[0-57-9][0-9]|6[0-57-9]))"
    r"-(?:0[1-9]|[1-9][0-9])"
    r"-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
)
# E-mail: dot-separated local part, labels of letters and digits (at most 63), a letters-only top-level domain.
EMAIL_TOKEN = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*@(?:[A-Za-z0-9]{1,63}\.)+[A-Za-z]{2,63}"
EMAIL_EXCEPT = r"[A-Za-z0-9_.]{65}@"  # a local part over 64 characters


@dataclass(frozen=True)
class Shape:
    """Cells `P X S` (see the module docstring) where X matches `token` and the cell not `exceptions`."""

    entity: str
    token: str  # RE2, no capturing group
    exceptions: str | None = None  # RE2 searched in the cell: such cells go to Python

    def matches_sql(self, value: str) -> str:
        cell = f"regexp_full_match({value}, {quote_literal(BEFORE + '(?:' + self.token + ')' + AFTER)})"
        if self.exceptions is None:
            return cell
        return f"({cell} AND NOT regexp_matches({value}, {quote_literal(self.exceptions)}))"

    def redacted_sql(self, value: str) -> str:
        """P + "[ENTITY]" + S, for a cell that `matches_sql`."""
        pattern = f"^({BEFORE})(?:{self.token})({AFTER})$"
        replacement = "\\1[" + self.entity + "]\\2"
        return f"regexp_replace({value}, {quote_literal(pattern)}, {quote_literal(replacement)})"


@dataclass(frozen=True)
class Shortcuts:
    shapes: tuple[Shape, ...]

    def none_sql(self, value: str) -> str:
        """True for cells that provably hold no entity."""
        return (
            f"(regexp_full_match({value}, {quote_literal(ALNUM)}) "
            f"AND NOT regexp_full_match({value}, {quote_literal('(?:' + ALNUM_EXCEPT + ')')}))"
        )

    def known_sql(self, value: str) -> str:
        """SQL giving, for a candidate cell, '' (no entity), the one entity it holds, or NULL (ask Python)."""
        cases = [f"WHEN {self.none_sql(value)} THEN ''"]
        cases += [f"WHEN {shape.matches_sql(value)} THEN {quote_literal(shape.entity)}" for shape in self.shapes]
        return f"CASE {' '.join(cases)} END"

    def redact_sql(self, value: str, fallback: str) -> str:
        """SQL redacting a candidate cell: known cells in SQL, the others with `fallback` (the Python UDF)."""
        cases = [f"WHEN {self.none_sql(value)} THEN {value}"]
        cases += [f"WHEN {shape.matches_sql(value)} THEN {shape.redacted_sql(value)}" for shape in self.shapes]
        return f"CASE {' '.join(cases)} ELSE {fallback} END"


def detector_digest(detector: Detector) -> str:
    """A digest of everything about the detector's entities that the proofs rely on."""
    entities = [
        {
            "name": entity.name,
            "patterns": [[pattern.pattern, pattern.flags] for pattern in entity.patterns],
            "validator": f"{entity.validator.__module__}.{entity.validator.__qualname__}",
            "prefilter": entity.prefilter,
            "quick": None if entity.quick is None else [entity.quick.pattern, entity.quick.flags],
            "options": _plain(entity.options),
            "context": list(entity.context),
        }
        for entity in detector.entities
    ]
    return hashlib.sha256(json.dumps(entities, sort_keys=True).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_PROVEN: weakref.WeakKeyDictionary[Detector, Shortcuts | None] = weakref.WeakKeyDictionary()


def shortcuts_for(detector: Detector) -> Shortcuts | None:
    """The proven short-cuts for this detector, or None when its entities are not the proven ones."""
    if detector not in _PROVEN:
        _PROVEN[detector] = _shortcuts(detector) if detector_digest(detector) == PROVEN_DIGEST else None
    return _PROVEN[detector]


def _shortcuts(detector: Detector) -> Shortcuts:
    ssn = next(entity for entity in detector.entities if entity.name == "USA_SSN")
    numbers = [str(v) for v in ssn.options.get("invalid", [])] + [str(d) * 9 for d in range(10)]
    sample_ssns = "|".join(f"{n[:3]}-{n[3:5]}-{n[5:]}" for n in numbers)
    return Shortcuts(
        (
            Shape("USA_SSN", SSN_TOKEN, sample_ssns),
            Shape("PHONE_NUMBER", PHONE_TOKEN),
            Shape("EMAIL", EMAIL_TOKEN, EMAIL_EXCEPT),
        )
    )
