"""The detectors against the PII peer cases (Presidio's recognizer test inputs, ../shared/peer_cases/pii).

Spans must match exactly. Asserted: every non-weak expected span is found except the documented misses below,
and no detection anywhere is a false positive (the negatives included). Weak spans (Presidio's low-confidence
ones) are reported, not required. `pytest -s` prints the per-entity table. The cases are located through
ENROLLMENT_SHARED_DIR or ../shared; missing, the tests skip, except in CI (CI=true) where they fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from enrollment_platform.pii.detectors import default_detector
from enrollment_platform.pii.evaluation import evaluate, load_cases, score_table, scores
from enrollment_platform_tests.conftest import shared_dir

# Strong spans we do not find, on purpose. The issue asks for US and E.164 phone forms; these are national
# formats of other countries (trunk prefix 0, no country code), which Presidio finds through libphonenumber with
# the JP region added by its test. Matching "0" + 8-10 digits in groups without per-country numbering plans would
# flag ordinary ids and reference numbers in every text column the leak scan reads.
KNOWN_MISSES = {
    ("PHONE_NUMBER", "09-7625400"): "Israeli national format (0 + area + 7 digits), not US or E.164",
    ("PHONE_NUMBER", "090-1234-5678"): "Japanese national mobile format (0 + 10 digits), not US or E.164",
}
# Weak spans we do not find, on purpose (Presidio scores them 0.05-0.4):
# - "::" and "::/n", the unspecified IPv6 address: it identifies no one, and "::" is common in prose and code;
# - "5/21", "05/2021": two-part month/day or month/year fractions; no date of birth, and they read like scores;
# - "078-051121", "07805-1121": SSN digits in the wrong groups;
# - "is415-555-0132": a number glued to a word (Presidio finds it only at its loosest leniency).
EXPECTED_RECORDS = 207


@pytest.fixture(scope="module")
def outcomes():
    cases = load_cases(shared_dir("peer_cases", "pii"))
    assert len(cases) == EXPECTED_RECORDS
    return evaluate(cases, default_detector())


def test_print_precision_and_recall_per_entity(outcomes):
    table = scores(outcomes)
    print("\n" + score_table(table))
    assert set(table) == {"USA_SSN", "EMAIL", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "DATE"}


def test_every_strong_span_is_found_except_the_documented_misses(outcomes):
    missed = {(o.case.entity, o.case.text[a:b]) for o in outcomes for a, b in o.missed_strong}
    assert missed == set(KNOWN_MISSES)


def test_no_false_positives_on_negatives_or_positives(outcomes):
    false_positives = [(o.case.source, o.case.text[a:b]) for o in outcomes for a, b in sorted(o.false_positives)]
    assert false_positives == []
    assert all(not o.found for o in outcomes if not o.case.expected)


def test_each_found_span_passes_its_entitys_prefilter(outcomes):
    import duckdb

    prefilters = {entity.name: entity.prefilter for entity in default_detector().entities}
    for outcome in outcomes:
        for span in default_detector().find(outcome.case.text):
            matched = duckdb.execute(
                "SELECT regexp_matches(?, ?)", [outcome.case.text, prefilters[span.entity]]
            ).fetchone()[0]
            assert matched, (outcome.case.source, span)


def test_pii_detect_command_writes_one_json_object_per_line(outcomes):
    texts = [o.case.text for o in outcomes if "\n" not in o.case.text]
    stdin = "".join(text + "\n" for text in texts).encode()
    result = subprocess.run(
        [sys.executable, "-m", "enrollment_platform.cli", "pii", "detect"],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=120,
    )
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(texts)
    detector = default_detector()
    for text, line in zip(texts, lines, strict=True):
        assert json.loads(line) == {"spans": [span.to_dict() for span in detector.find(text)]}
    ssn_line = texts.index("078-05-1123")
    assert json.loads(lines[ssn_line]) == {"spans": [{"entity": "USA_SSN", "start": 0, "end": 11}]}
