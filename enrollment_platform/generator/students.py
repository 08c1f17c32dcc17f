"""Students: clean sample, re-sent revision and text rendering."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import fmt
from .defects import RATES
from .frames import (
    FIRST_NAMES,
    Frame,
    categorical,
    date_format_codes,
    day,
    first_names,
    note_parts,
    notes_text,
    phone_parts,
    seconds_between,
    ssn_parts,
)
from .names import (
    CITIES,
    DEPARTMENTS,
    EMAIL_DOMAINS_STUDENT,
    GENDERS,
    LAST_NAMES,
    STREET_NAMES,
    STREET_SUFFIXES,
    STUDENT_NOTES,
)

COLUMNS = [
    "student_id",
    "first_name",
    "last_name",
    "date_of_birth",
    "gender",
    "email",
    "phone",
    "ssn",
    "address",
    "city",
    "state",
    "postal_code",
    "major",
    "notes",
    "last_modified",
]
DATE_COLUMNS = ["date_of_birth"]
# column -> canonical case of its values ("title", "lower", "upper" or None: whitespace noise only)
NOISE_COLUMNS = {
    "first_name": "title",
    "last_name": "title",
    "email": "lower",
    "city": "title",
    "major": None,
}


def _address(rng: np.random.Generator, n: int) -> Frame:
    return {
        "house": rng.integers(1, 10_000, n),
        "street": rng.integers(0, len(STREET_NAMES), n),
        "suffix": rng.integers(0, len(STREET_SUFFIXES), n),
        "apt": np.where(rng.random(n) < 0.15, rng.integers(1, 500, n), 0),
        "city": rng.integers(0, len(CITIES), n),
        "zip_tail": rng.integers(0, 100, n),
    }


def _email(rng: np.random.Generator, n: int) -> Frame:
    return {
        "email_style": rng.integers(0, 4, n),
        "email_num": np.where(rng.random(n) < 0.4, rng.integers(1, 100, n), -1),
        "email_domain": rng.integers(0, len(EMAIL_DOMAINS_STUDENT), n),
    }


def sample(rng: np.random.Generator, ids: np.ndarray) -> Frame:
    n = len(ids)
    gender = categorical(rng, n, [0.48, 0.49, 0.03])
    frame: Frame = {
        "student_id": np.asarray(ids, dtype=np.int64),
        "gender": gender,
        "first": first_names(rng, gender),
        "last": rng.integers(0, len(LAST_NAMES), n),
        "dob": rng.integers(day("1985-01-01"), day("2008-12-31") + 1, n),
        "date_of_birth_fmt": date_format_codes(rng, n, RATES["date_formats"]),
        "major": rng.integers(0, len(DEPARTMENTS), n),
        "last_modified": seconds_between(rng, n, "2024-01-01", "2025-06-30"),
    }
    frame |= _email(rng, n)
    frame |= phone_parts(rng, n, "phone_")
    frame |= ssn_parts(rng, n, "ssn_")
    frame |= _address(rng, n)
    frame |= note_parts(rng, n, len(STUDENT_NOTES), RATES["notes_plain"], RATES["notes_with_pii"])
    return frame


def revise(rng: np.random.Generator, frame: Frame) -> Frame:
    """A re-sent version: the student moved and changed e-mail; strictly newer last_modified."""
    n = len(frame["student_id"])
    out = dict(frame)
    out |= _address(rng, n)
    email = _email(rng, n)
    email["email_num"] = (frame["email_num"] + 1 + rng.integers(1, 50, n)) % 100 + 1  # always differs
    out |= email
    out["last_modified"] = frame["last_modified"] + rng.integers(3_600, 60 * 86_400, n)
    return out


def to_table(frame: Frame) -> pa.Table:
    first = fmt.lookup(FIRST_NAMES, frame["first"])
    last = fmt.lookup(LAST_NAMES, frame["last"])
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    local = fmt.choose(
        frame["email_style"],
        [
            fmt.join(first, ".", last),
            fmt.join(first, last),
            fmt.join(initial, last),
            fmt.join(first, "_", last),
        ],
    )
    num = frame["email_num"]
    suffix = pc.if_else(pa.array(num >= 0), fmt.ints(np.maximum(num, 0)), "")
    email = pc.utf8_lower(fmt.join(local, suffix, "@", fmt.lookup(EMAIL_DOMAINS_STUDENT, frame["email_domain"])))
    apt = pc.if_else(pa.array(frame["apt"] > 0), fmt.join(" Apt ", fmt.ints(frame["apt"])), "")
    address = fmt.join(
        fmt.ints(frame["house"]),
        " ",
        fmt.lookup(STREET_NAMES, frame["street"]),
        " ",
        fmt.lookup(STREET_SUFFIXES, frame["suffix"]),
        apt,
    )
    city_codes = frame["city"]
    columns = {
        "student_id": fmt.ints(frame["student_id"]),
        "first_name": first,
        "last_name": last,
        "date_of_birth": fmt.dates(frame["dob"], frame["date_of_birth_fmt"]),
        "gender": fmt.lookup(GENDERS, frame["gender"]),
        "email": email,
        "phone": fmt.phones(frame["phone_area"], frame["phone_exch"], frame["phone_line"], frame["phone_fmt"]),
        "ssn": fmt.ssns(frame["ssn_area"], frame["ssn_group"], frame["ssn_serial"]),
        "address": address,
        "city": fmt.lookup([c[0] for c in CITIES], city_codes),
        "state": fmt.lookup([c[1] for c in CITIES], city_codes),
        "postal_code": fmt.join(fmt.lookup([c[2] for c in CITIES], city_codes), fmt.padded(frame["zip_tail"], 2)),
        "major": fmt.lookup(DEPARTMENTS, frame["major"]),
        "notes": notes_text(frame, STUDENT_NOTES),
        "last_modified": fmt.timestamps(frame["last_modified"]),
    }
    return pa.table({c: columns[c] for c in COLUMNS})
