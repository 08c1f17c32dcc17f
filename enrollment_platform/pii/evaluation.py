"""Scoring the detectors on labelled examples (the peer cases from Presidio's recognizer tests, JSON lines).

A record gives a text, its entity (Presidio's name) and the expected spans; `weak_spans` are those Presidio finds
only at low confidence. Spans match exactly (same start and end). Per entity: true positives, false positives
(any detected span of that entity that is not expected, negatives included), misses of strong and of weak spans,
precision, recall over all spans and recall over the strong ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from enrollment_platform.pii.detectors import Detector

PRESIDIO_NAMES = {"US_SSN": "USA_SSN", "PHONE": "PHONE_NUMBER"}
SpanSet = frozenset[tuple[int, int]]


@dataclass(frozen=True)
class Case:
    source: str
    text: str
    entity: str
    expected: SpanSet
    weak: SpanSet


@dataclass(frozen=True)
class Outcome:
    case: Case
    found: SpanSet

    @property
    def true_positives(self) -> SpanSet:
        return self.found & self.case.expected

    @property
    def false_positives(self) -> SpanSet:
        return self.found - self.case.expected

    @property
    def missed_strong(self) -> SpanSet:
        return self.case.expected - self.case.weak - self.found

    @property
    def missed_weak(self) -> SpanSet:
        return self.case.weak - self.found


@dataclass(frozen=True)
class Score:
    entity: str
    records: int
    negatives: int
    expected: int
    strong: int
    true_positives: int
    false_positives: int
    missed_strong: int
    missed_weak: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.expected if self.expected else 1.0

    @property
    def recall_strong(self) -> float:
        return (self.strong - self.missed_strong) / self.strong if self.strong else 1.0


def load_cases(folder: Path) -> list[Case]:
    cases = []
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            cases.append(
                Case(
                    source=f"{path.name}:{number}",
                    text=record["text"],
                    entity=PRESIDIO_NAMES.get(record["entity"], record["entity"]),
                    expected=frozenset(tuple(span) for span in record["expected_spans"]),
                    weak=frozenset(tuple(span) for span in record.get("weak_spans", [])),
                )
            )
    return cases


def evaluate(cases: Iterable[Case], detector: Detector) -> list[Outcome]:
    """The detector's spans of each case's entity (after overlap resolution among all entities)."""
    return [
        Outcome(case, frozenset((s.start, s.end) for s in detector.find(case.text) if s.entity == case.entity))
        for case in cases
    ]


def scores(outcomes: Iterable[Outcome]) -> dict[str, Score]:
    by_entity: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_entity.setdefault(outcome.case.entity, []).append(outcome)
    return {entity: _score(entity, items) for entity, items in sorted(by_entity.items())}


def _score(entity: str, outcomes: list[Outcome]) -> Score:
    return Score(
        entity=entity,
        records=len(outcomes),
        negatives=sum(1 for o in outcomes if not o.case.expected),
        expected=sum(len(o.case.expected) for o in outcomes),
        strong=sum(len(o.case.expected - o.case.weak) for o in outcomes),
        true_positives=sum(len(o.true_positives) for o in outcomes),
        false_positives=sum(len(o.false_positives) for o in outcomes),
        missed_strong=sum(len(o.missed_strong) for o in outcomes),
        missed_weak=sum(len(o.missed_weak) for o in outcomes),
    )


def score_table(table: dict[str, Score]) -> str:
    """A plain-text table, one line per entity."""
    header = (
        f"{'entity':<13} {'records':>7} {'neg':>4} {'spans':>5} {'strong':>6} {'TP':>4} {'FP':>3} "
        f"{'miss strong':>11} {'miss weak':>9} {'precision':>9} {'recall':>6} {'recall strong':>13}"
    )
    lines = [header, "-" * len(header)]
    for s in table.values():
        lines.append(
            f"{s.entity:<13} {s.records:>7} {s.negatives:>4} {s.expected:>5} {s.strong:>6} {s.true_positives:>4} "
            f"{s.false_positives:>3} {s.missed_strong:>11} {s.missed_weak:>9} {s.precision:>9.3f} {s.recall:>6.3f} "
            f"{s.recall_strong:>13.3f}"
        )
    return "\n".join(lines)
