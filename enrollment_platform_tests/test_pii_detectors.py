"""PII detectors: examples per entity, property tests, the RE2 prefilter, the DuckDB UDFs, classification."""

from __future__ import annotations

import ipaddress
from datetime import date

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from enrollment_platform.config import ConfigError, load_pii_policy
from enrollment_platform.generator.names import ENROLLMENT_NOTES, STUDENT_NOTES
from enrollment_platform.pii.classify import classify_values
from enrollment_platform.pii.detectors import default_detector, detector_from_policy
from enrollment_platform.pii.duckdb_functions import redact_text_sql
from enrollment_platform.pii.report import scan_dataset
from enrollment_platform.pii.validators import luhn_valid

DETECTOR = default_detector()
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BEFORE = st.sampled_from(["", " ", "SSN: ", "call ", "(", "id=", "\t", "x, "])
AFTER = st.sampled_from(["", " ", ".", " ok", ")", ", then", "\n"])


def found(text: str) -> list[tuple[str, str]]:
    return [(span.entity, text[span.start : span.end]) for span in DETECTOR.find(text)]


def passes_prefilter(text: str, prefilter: str) -> bool:
    """RE2, as the SQL engines evaluate it (DuckDB's regexp_matches)."""
    return duckdb.execute("SELECT regexp_matches(?, ?)", [text, prefilter]).fetchone()[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SSN on file 569-60-3012 verified", [("USA_SSN", "569-60-3012")]),
        ("unformatted 569603012.", [("USA_SSN", "569603012")]),
        ("call (713) 821-9556 today", [("PHONE_NUMBER", "(713) 821-9556")]),
        ("call +1 512 457 1851 about aid", [("PHONE_NUMBER", "+1 512 457 1851")]),
        ("call 7138219556", [("PHONE_NUMBER", "7138219556")]),
        ("intl +44 (20) 7123 4567", [("PHONE_NUMBER", "+44 (20) 7123 4567")]),
        ("mail Max.Santos@Example.EDU per request", [("EMAIL", "Max.Santos@Example.EDU")]),
        ("card 4111-1111-1111-1111", [("CREDIT_CARD", "4111-1111-1111-1111")]),
        ("amex 3714 496353 98431", [("CREDIT_CARD", "3714 496353 98431")]),
        ("from 10.0.0.1 and fe80::1%eth0", [("IP_ADDRESS", "10.0.0.1"), ("IP_ADDRESS", "fe80::1%eth0")]),
        ("born 3/14/2001", [("DATE", "3/14/2001")]),
        ("born 2001-03-14", [("DATE", "2001-03-14")]),
        ("born 14 March 2001", [("DATE", "14 March 2001")]),
        ("visa record N0012345678", [("SEVIS_ID", "N0012345678")]),
    ],
)
def test_examples_are_found_with_exact_spans(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000",  # never-issued SSN parts
        "078-05-1120 and 123-45-6789",  # published sample numbers
        "123-45.6789",  # mixed separators
        "4111-1111-1111-1112",  # fails Luhn
        "1748503543012",  # Luhn-valid, but no issuer uses 13 digits starting with 1
        "call 123-456-7890 or 415-123-4567",  # area / exchange starting with 0 or 1
        "my email is info@presidio.",
        "version 1.2.3, ratio 1:2:3:4, time 12:34:56, MAC aa:bb:cc:dd:ee:ff, std::cout",
        "2/30/2021 and 13/13/2021",  # no such dates
        "SPRING2024 enrollments/enrollments_0000.csv *******1331",
        'ColumnValues "rating" between 0 and 5',
        "a12aebea1f56cc6f859959b1df488fd6f8b7a5641fe4c0d2e22e1e40c776af92",
        "N00123456789 is too long for a SEVIS ID",
    ],
)
def test_non_pii_is_not_found(text):
    assert found(text) == []


def test_plain_notes_of_the_generator_hold_no_pii():
    assert [note for note in STUDENT_NOTES + ENROLLMENT_NOTES if DETECTOR.find(note)] == []


def test_overlaps_resolve_to_the_longer_span():
    text = "::ffff:192.0.2.1 and 2024-03-15T14:30:00Z"
    assert found(text) == [("IP_ADDRESS", "::ffff:192.0.2.1"), ("DATE", "2024-03-15T14:30:00Z")]


def test_redact_replaces_every_entity_and_is_idempotent():
    text = "SSN 569-60-3012, phone (713) 821-9556, mail a.b@example.org, card 4111111111111111"
    redacted = DETECTOR.redact(text)
    assert redacted == "SSN [USA_SSN], phone [PHONE_NUMBER], mail [EMAIL], card [CREDIT_CARD]"
    assert DETECTOR.redact(redacted) == redacted
    assert DETECTOR.redact(None) is None


# --- property tests -------------------------------------------------------------------------------------------


@st.composite
def ssns(draw, valid: bool = True) -> str:
    if valid:
        area = draw(st.integers(1, 899).filter(lambda a: a != 666))
        group, serial = draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    else:
        area = draw(st.sampled_from([0, 666]) | st.integers(900, 999))
        group, serial = draw(st.integers(0, 99)), draw(st.integers(0, 9999))
    sep = draw(st.sampled_from(["-", " ", ".", ""]))
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


@PROPERTY
@given(ssns(valid=True), BEFORE, AFTER)
def test_valid_ssns_are_found(ssn, before, after):
    digits = ssn.replace("-", "").replace(" ", "").replace(".", "")
    assume(len(set(digits)) > 1 and digits not in {"078051120", "123456789", "219099999", "457555462"})
    assert found(before + ssn + after) == [("USA_SSN", ssn)]


@PROPERTY
@given(ssns(valid=False), BEFORE, AFTER)
def test_ssns_in_never_issued_areas_are_never_found(ssn, before, after):
    assert "USA_SSN" not in DETECTOR.entities_in(before + ssn + after)


def with_check_digit(body: str) -> str:
    return body + next(d for d in "0123456789" if luhn_valid(body + d))


CARD_ISSUERS = [("4", 16), ("4", 13), ("51", 16), ("2221", 16), ("37", 15), ("36", 14), ("6011", 16), ("3528", 16)]


@st.composite
def cards(draw) -> str:
    prefix, length = draw(st.sampled_from(CARD_ISSUERS))
    body = prefix + "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"), min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1
            )
        )
    )
    number = with_check_digit(body)
    if length == 16 and draw(st.booleans()):
        sep = draw(st.sampled_from([" ", "-"]))
        number = sep.join(number[i : i + 4] for i in range(0, 16, 4))
    return number


@PROPERTY
@given(cards(), BEFORE, AFTER)
def test_luhn_valid_card_numbers_are_found(card, before, after):
    assert found(before + card + after) == [("CREDIT_CARD", card)]


@PROPERTY
@given(cards(), st.integers(1, 9))
def test_card_numbers_failing_luhn_are_not_cards(card, change):
    last = str((int(card[-1]) + change) % 10)
    assert "CREDIT_CARD" not in DETECTOR.entities_in(f"card {card[:-1]}{last} on file")


@st.composite
def us_phones(draw) -> str:
    area = draw(st.integers(200, 999).filter(lambda a: a % 100 != 11))
    exchange, line = draw(st.integers(200, 999)), draw(st.integers(0, 9999))
    a, e, n = f"{area}", f"{exchange}", f"{line:04d}"
    forms = [
        f"{a}-{e}-{n}",
        f"({a}) {e}-{n}",
        f"{a}.{e}.{n}",
        f"+1 {a} {e} {n}",
        f"{a}{e}{n}",
        f"1-{a}-{e}-{n}",
        f"+1{a}{e}{n}",
    ]
    return draw(st.sampled_from(forms))


@PROPERTY
@given(us_phones(), BEFORE, AFTER)
def test_us_phone_numbers_are_found(phone, before, after):
    assert found(before + phone + after) == [("PHONE_NUMBER", phone)]


@PROPERTY
@given(
    st.from_regex(
        r"[a-z0-9]{1,12}(\.[a-z0-9_%+-]{1,8})?@[a-z0-9]{1,12}(-[a-z0-9]{1,5})?\.(edu|org|com|co\.uk)", fullmatch=True
    )
)
def test_email_addresses_are_found(address):
    assert found(f"contact {address} please") == [("EMAIL", address)]


@PROPERTY
@given(st.integers(0, 2**32 - 1) | st.integers(1, 2**128 - 1), st.booleans(), BEFORE, AFTER)
def test_ip_addresses_are_found(number, exploded, before, after):
    assume(number > 0 or not exploded)  # "::" (the unspecified address) is deliberately not reported
    address = ipaddress.ip_address(number) if number < 2**32 and not exploded else ipaddress.IPv6Address(number)
    text = address.exploded if exploded else str(address)
    assert found(before + text + after) == [("IP_ADDRESS", text)]


@PROPERTY
@given(
    st.dates(date(1900, 1, 1), date(2099, 12, 31)),
    st.sampled_from(["%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d", "%d-%b-%Y", "mdy"]),
)
def test_dates_in_the_formats_we_parse_are_found(day, form):
    text = f"{day.month}/{day.day}/{day.year}" if form == "mdy" else day.strftime(form)
    assert found(f"born {text}.") == [("DATE", text)]


@PROPERTY
@given(st.uuids(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_tokens_and_uuids_are_not_pii(uuid, token):
    assert DETECTOR.find(str(uuid)) == [] and DETECTOR.find(token) == []


@PROPERTY
@given(
    st.one_of(
        ssns(),
        cards(),
        us_phones(),
        st.integers(1, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
        st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%d-%b-%Y")),
    ),
    BEFORE,
    AFTER,
)
def test_each_entitys_prefilter_matches_every_cell_where_it_is_found(value, before, after):
    text = before + value + after
    prefilters = {entity.name: entity.prefilter for entity in DETECTOR.entities}
    for span in DETECTOR.find(text):
        assert passes_prefilter(text, prefilters[span.entity]), span


# --- configuration, UDFs, classification ----------------------------------------------------------------------


def test_custom_entities_come_from_config_and_respect_context_words():
    policy = {"custom_entities": {"BADGE": {"pattern": r"B-\d{4}", "context": ["badge"]}}}
    detector = detector_from_policy(policy)
    assert detector.names == ["BADGE"]
    assert [s.entity for s in detector.find("badge B-1234")] == ["BADGE"]
    assert detector.find("room B-1234") == []


def test_an_unknown_validator_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown validator"):
        detector_from_policy({"entities": {"X": {"validator": "nope", "patterns": ["x"], "prefilter": "x"}}})


def test_the_udfs_agree_with_the_detector_and_skip_cells_without_candidates(pii_con):
    texts = ["SSN 569-60-3012", "plain words", None, "mail a@b.org, born 3/14/2001"]
    rows = pii_con.execute(
        f"SELECT {redact_text_sql('t', DETECTOR.prefilter)}, pii_entities(t) FROM unnest(?) AS u(t)", [texts]
    ).fetchall()
    assert [r[0] for r in rows] == [DETECTOR.redact(t) for t in texts]
    assert [r[1] for r in rows] == [["USA_SSN"], [], None, ["DATE", "EMAIL"]]


def test_column_classification_uses_the_threshold():
    phones = ["415-555-0132", "(415) 555-0133", "n/a", "4155550134"]
    assert classify_values(phones, DETECTOR, 0.5).entity == "PHONE_NUMBER"
    notes = ["SSN 569-60-3012"] + ["plain"] * 19
    assert classify_values(notes, DETECTOR, 0.1).entity is None
    assert classify_values(notes, DETECTOR, 0.05).entity == "USA_SSN"


def test_scan_flags_a_pii_column_missing_from_the_policy(pii_con):
    pii_con.execute(
        "CREATE OR REPLACE TABLE people AS SELECT * FROM (VALUES ('1', 'a@example.org', 'Boston'), "
        "('2', 'b@example.org', 'Austin'), ('3', NULL, 'Denver')) t(id, contact, city)"
    )
    columns = [("id", "VARCHAR"), ("contact", "VARCHAR"), ("city", "VARCHAR")]
    scan = scan_dataset(
        lambda sql: pii_con.execute(sql).fetchall(), "people", "people", columns, load_pii_policy(), DETECTOR
    )
    assert [(d.column, d.entity, d.detections, d.action) for d in scan.detections] == [("contact", "EMAIL", 2, "none")]
    assert set(scan.unprotected) == {"contact"} and scan.unprotected["contact"].entity == "EMAIL"
