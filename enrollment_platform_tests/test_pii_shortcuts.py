"""The detector's SQL short-cuts (pii.shortcuts) give exactly what the Python detector gives: counts, redactions
and classifications, on the shapes they settle, on near misses and on random text; and the batched scan equals
running the detector on every candidate cell."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment_platform.config import load_pii_policy
from enrollment_platform.generator.names import PII_NOTES
from enrollment_platform.pii.detectors import default_detector, detector_from_policy
from enrollment_platform.pii.duckdb_functions import redact_text_sql
from enrollment_platform.pii.report import scan_dataset
from enrollment_platform.pii.scan import candidates_sql, count_expressions, scan_columns
from enrollment_platform.pii.shortcuts import PROVEN_DIGEST, detector_digest, shortcuts_for
from enrollment_platform.pii.validators import luhn_valid

DETECTOR = default_detector()
SHORTCUTS = shortcuts_for(DETECTOR)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def settled(pii_con, texts: list[str]) -> list[tuple[str, str | None, str, bool]]:
    """Per text: (text, what the short-cuts know, the redaction SQL's result, whether the prefilter passes)."""
    sql = (
        f"SELECT t, {SHORTCUTS.known_sql('t')}, {redact_text_sql('t', DETECTOR.prefilter, DETECTOR)}, "
        f"regexp_matches(t, ?) FROM unnest(?) WITH ORDINALITY AS u(t, i) ORDER BY i"
    )
    return pii_con.execute(sql, [DETECTOR.prefilter, texts]).fetchall()


def assert_exact(pii_con, texts: list[str]) -> list[str | None]:
    """Short-cuts agree with the detector on every text; returns what they knew."""
    knowns = []
    for text, known, redacted, candidate in settled(pii_con, texts):
        entities = DETECTOR.entities_in(text)
        if known is not None:
            assert entities == ({known} if known else set()), (text, known)
        assert redacted == (DETECTOR.redact(text) if candidate else text), text
        if entities:  # proof 3: every cell holding an entity passes the combined RE2 prefilter
            assert candidate, text
        knowns.append(known)
    return knowns


# --- strategies: the settled shapes, near misses, hostile context ---------------------------------------------


def mostly(edges: list[str], other: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Edge values two times in three, else `other`."""
    return st.one_of(st.sampled_from(edges), st.sampled_from(edges), other)


def digits(n: int, edges: list[str]) -> st.SearchStrategy[str]:
    return mostly(edges, st.text("0123456789", min_size=n, max_size=n))


AREAS = digits(3, ["000", "001", "078", "099", "123", "211", "219", "411", "457", "599", "665", "666", "667", "699"])
AREAS = st.one_of(AREAS, st.sampled_from(["700", "899", "900", "999", "100", "199", "200", "911", "811"]))
GROUPS = digits(2, ["00", "01", "05", "09", "10", "45", "55", "99"])
SERIALS = digits(4, ["0000", "0001", "0010", "0100", "1000", "1120", "6789", "9999", "5462"])
PUBLISHED_SSNS = ["078-05-1120", "123-45-6789", "219-09-9999", "457-55-5462"]
SAME_DIGIT_SSNS = [f"{d * 3}-{d * 2}-{d * 4}" for d in "0123456789"]


@st.composite
def ssn_like(draw) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(PUBLISHED_SSNS + SAME_DIGIT_SSNS))
    sep = draw(mostly(["-"], st.sampled_from([".", " ", "", "/", "--"])))
    second = draw(mostly([sep], st.sampled_from(["-", ""])))
    return draw(AREAS) + sep + draw(GROUPS) + second + draw(SERIALS)


@st.composite
def phone_like(draw) -> str:
    a, e, n = draw(AREAS), draw(AREAS), draw(SERIALS)
    settled = [f"{a}-{e}-{n}", f"{a}.{e}.{n}", f"{a}{e}{n}", f"({a}) {e}-{n}", f"+1 {a} {e} {n}"]
    others = [f"1-{a}-{e}-{n}", f"1 {a} {e} {n}", f"+1 ({a}) {e}-{n}", f"+1{a}{e}{n}", f"+12 {a} {e} {n}"]
    others += [f"{a} {e} {n}", f"{a}-{e}{n}", f"({a}){e}-{n}", f"1{a}{e}{n}", f"{a}-{e}-{n}-1", f"{a}.{e}-{n}"]
    return draw(mostly(settled, st.sampled_from(others)))


CLEAN_LOCALS = st.from_regex(r"[A-Za-z0-9_]{1,12}(\.[A-Za-z0-9_]{1,12}){0,2}", fullmatch=True)
LOCALS = mostly(
    ["a", "carlos.cruz", "kayla_dixon26", "A.B_1"],
    st.one_of(
        CLEAN_LOCALS,
        st.from_regex(r"[A-Za-z0-9_.%+-]{1,16}", fullmatch=True),
        st.sampled_from([".a", "a.", "a..b", "_", "a_", "-a", "a-b", "a+b", "%", "1", "12.34"]),
        st.integers(62, 67).map(lambda n: "a" * n),
        st.integers(62, 67).map(lambda n: "b." + "c" * (n - 2)),
    ),
)
LABELS = mostly(
    ["example", "student", "b", "mail1"],
    st.one_of(
        st.from_regex(r"[A-Za-z0-9-]{1,10}", fullmatch=True),
        st.sampled_from(["-a", "a-", "a-b", "xn--p1", "1", "a_b"]),
        st.integers(61, 65).map(lambda n: "d" * n),
    ),
)
TLDS = mostly(
    ["edu", "org", "io", "may", "dec", "T"],
    st.one_of(
        st.from_regex(r"[A-Za-z]{1,4}", fullmatch=True),
        st.sampled_from(["xn--p1ai", "xn--", "xn", "a1", "1a", "co-", "-co", "c_", "c"]),
        st.integers(61, 65).map(lambda n: "e" * n),
    ),
)


@st.composite
def email_like(draw) -> str:
    labels = draw(st.lists(LABELS, min_size=draw(st.sampled_from([1, 1, 0])), max_size=3))
    return draw(LOCALS) + "@" + "".join(label + "." for label in labels) + draw(TLDS)


@st.composite
def card_like(draw) -> str:
    """Digit strings of card lengths, about half of them Luhn-valid."""
    body = draw(st.sampled_from(["4", "51", "55", "2221", "34", "37", "36", "35", "6011", "65", "62", "50", "1", "9"]))
    body += draw(st.text("0123456789", min_size=10, max_size=18))[: draw(st.integers(11, 18)) - len(body)]
    if draw(st.booleans()):
        return next(body + d for d in "0123456789" if luhn_valid(body + d))
    return body + draw(st.sampled_from("0123456789"))


PLAIN_WORDS = ["SSN", "on", "file", "verified", "May", "Sept", "dec", "March", "N", "T", "Z", "face", "xn", "at", ""]
HOSTILE_WORDS = ["1", "12", "2021", "21,", ",", ".", ":", "+", "(", ")", "@", "-", "/", "_", "\n", "\t"]
WORDS = st.sampled_from([*PLAIN_WORDS, *HOSTILE_WORDS, "\u017fep", "\u212a", "caf\u00e9"])
GLUE = st.sampled_from(["", " ", " ", " ", "  ", ",", ".", "-", "\n", ":", "/", "_", "+"])
HOSTILE_BEFORE = ["", " ", "  ", "SSN on file ", "contact at ", "May ", "Sept. ", "on 3 May ", "1 ", "12 ", "2021 "]
HOSTILE_BEFORE += ["+", "+1 ", "(", "-", "x-", "a.", ".", ", ", ": ", "N", "T ", "face:", "\n", "\u017fep ", "d@x "]
HOSTILE_BEFORE += ["12 May 2021 ", "10.0.0.1 ", "a@b.org ", "415-555-0132 ", "N0012345678 ", "4111 1111 1111 1111 "]
HOSTILE_AFTER = ["", " ", " verified", " about aid", " 1", " 12", " 2021", ",", ", 2021", "-x", "-", ".", ".5", ":"]
HOSTILE_AFTER += ["/24", "%eth0", " May 2021", " T", "x", "1", "\n", "@x.com", " \u212a", "T10:30", " Mar"]
HOSTILE_AFTER += [" 12 May 2021", " 3/14/2001", " 10.0.0.1", " N0012345678", " a@b.org", " 415-555-0132", "-co"]


@st.composite
def in_context(draw, token: st.SearchStrategy[str]) -> str:
    if draw(st.integers(0, 2)):
        return draw(st.sampled_from(HOSTILE_BEFORE)) + draw(token) + draw(st.sampled_from(HOSTILE_AFTER))
    before = " ".join(draw(st.lists(WORDS, max_size=4)))
    after = " ".join(draw(st.lists(WORDS, max_size=4)))
    return before + draw(GLUE) + draw(token) + draw(GLUE) + after


TOKENS = st.one_of(ssn_like(), phone_like(), email_like())
ALNUM = st.one_of(
    st.from_regex(r"[0-9A-Za-z]{1,24}", fullmatch=True),
    st.integers(1, 22).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
    st.from_regex(r"N[0-9]{8,12}", fullmatch=True),
    st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    card_like(),
)
NOISE = st.text(st.sampled_from(list("0123456789 -.()+@:/,_NTZabcdefMayJunSept\u017f\u212a\n")), max_size=40)
CELLS = st.one_of(TOKENS, in_context(TOKENS), ALNUM, in_context(ALNUM), NOISE)


# --- the packaged policy is the proven one; any other detector gets no short-cut ------------------------------


def test_the_packaged_policy_is_the_one_the_shortcuts_were_proven_for():
    assert detector_digest(DETECTOR) == PROVEN_DIGEST, (
        "the PII entities changed: re-check the proofs in pii/shortcuts.py, run this file, then update PROVEN_DIGEST"
    )
    assert SHORTCUTS is not None
    assert shortcuts_for(detector_from_policy(load_pii_policy())) is not None  # same entities, another instance


def test_a_changed_policy_gets_no_shortcuts_and_the_plain_detector():
    policy = load_pii_policy()
    changed = {**policy, "custom_entities": {**policy["custom_entities"], "BADGE": {"pattern": r"B\d{4}"}}}
    assert shortcuts_for(detector_from_policy(changed)) is None
    entities = dict(policy["entities"])
    entities["USA_SSN"] = {**entities["USA_SSN"], "invalid": []}
    detector = detector_from_policy({**policy, "entities": entities})
    assert shortcuts_for(detector) is None
    assert redact_text_sql("t", detector.prefilter, detector) == redact_text_sql("t", detector.prefilter)


# --- equivalence ----------------------------------------------------------------------------------------------


@PROPERTY
@given(st.lists(CELLS, min_size=1, max_size=40))
def test_shortcuts_give_exactly_the_detectors_entities_and_redactions(pii_con, texts):
    assert_exact(pii_con, texts)


@pytest.mark.parametrize("token", [ssn_like(), phone_like(), email_like()], ids=["ssn", "phone", "email"])
def test_shortcuts_on_tokens_and_near_misses_in_context(pii_con, token):
    @PROPERTY
    @given(st.lists(st.one_of(token, in_context(token)), min_size=20, max_size=60))
    def check(texts):
        assert_exact(pii_con, texts)

    check()


def test_the_generators_pii_values_and_notes_are_settled_in_sql(pii_con):
    """What the short-cuts are for: every shape the generator writes is settled without Python."""
    values = ["646-04-3433", "215-886-9364", "(213) 406-3679", "415.798.7375", "+1 206 639 4617", "2132176942"]
    values += ["carlos.cruz@example.org", "kayla_dixon26@student.example.edu", "mwilson99@example.org"]
    notes = [prefix + value + suffix for prefix, _, suffix in PII_NOTES for value in values]
    ids = ["10377135", "4382249", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    assert None not in assert_exact(pii_con, values + notes + ids)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(CELLS, st.sampled_from(["", "x", "plain words"])), min_size=1, max_size=30))
def test_the_batched_scan_equals_the_detector_on_every_candidate_cell(pii_con, rows):
    pii_con.execute("CREATE OR REPLACE TEMP TABLE cells (a VARCHAR, b VARCHAR, c VARCHAR[])")
    pii_con.executemany("INSERT INTO cells VALUES (?, ?, ?)", [(a, b, [a, b]) for a, b in rows])
    expressions = ["a", "b", "array_to_string(c, chr(10))"]
    fetch = lambda sql: pii_con.execute(sql).fetchall()  # noqa: E731
    values = ", ".join(f"{e}, regexp_matches({e}, $1)" for e in expressions)
    expected: list[Counter[str]] = [Counter() for _ in expressions]
    for row in pii_con.execute(f"SELECT {values} FROM cells", [DETECTOR.prefilter]).fetchall():
        for i, counts in enumerate(expected):
            if row[2 * i + 1]:  # the original scan: the detector on every cell passing the prefilter
                counts.update(DETECTOR.entities_in(row[2 * i]))
    assert count_expressions(fetch, "cells", expressions, DETECTOR) == expected
    for expression in expressions:  # both ways of feeding the prefilter give the same rows
        plain = candidates_sql("cells", expression, DETECTOR.prefilter, group_first=False)
        grouped = candidates_sql("cells", expression, DETECTOR.prefilter, group_first=True)
        assert sorted(fetch(plain)) == sorted(fetch(grouped))


def test_scan_columns_and_the_report_skip_only_what_cannot_be_found(pii_con):
    pii_con.execute(
        "CREATE OR REPLACE TABLE people AS SELECT * FROM (VALUES "
        "('10377135', 'call 415-555-0132', 'a@example.org', 'Boston', 'SSN on file 569-60-3012 verified'), "
        "('10377136', 'plain', 'b@example.org', 'Austin', 'none'), "
        "('10377137', NULL, NULL, 'Denver', 'born 3/14/2001')) t(id, note, contact, city, other)"
    )
    columns = [("id", "VARCHAR"), ("note", "VARCHAR"), ("contact", "VARCHAR"), ("city", "VARCHAR")]
    columns.append(("other", "VARCHAR"))
    fetch = lambda sql: pii_con.execute(sql).fetchall()  # noqa: E731
    assert scan_columns(fetch, "people", columns, DETECTOR) == {
        "note": Counter({"PHONE_NUMBER": 1}),
        "contact": Counter({"EMAIL": 2}),
        "other": Counter({"USA_SSN": 1, "DATE": 1}),
    }
    scan = scan_dataset(fetch, "people", "people", columns, load_pii_policy(), DETECTOR)
    assert {(d.column, d.entity, d.detections) for d in scan.detections} == {
        ("note", "PHONE_NUMBER", 1),
        ("contact", "EMAIL", 2),
        ("other", "USA_SSN", 1),
        ("other", "DATE", 1),
    }
    assert {c: f.entity for c, f in scan.unprotected.items()} == {
        "note": "PHONE_NUMBER",
        "contact": "EMAIL",
        "other": "USA_SSN",
    }
