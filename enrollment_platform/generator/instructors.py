"""Instructors: clean sample, re-sent revision, near-duplicates, out-of-range ratings and rendering."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import fmt
from .frames import DAY, FIRST_NAMES, Frame, categorical, first_names, seconds_between
from .names import DEPARTMENTS, EMAIL_DOMAIN_FACULTY, LAST_NAMES, SPECIALIZATIONS

COLUMNS = [
    "instructor_id",
    "first_name",
    "last_name",
    "department",
    "specialization",
    "rating",
    "email",
    "last_modified",
]
DATE_COLUMNS: list[str] = []
NOISE_COLUMNS = {
    "first_name": "title",
    "last_name": "title",
    "email": "lower",
    "department": "title",
    "specialization": None,
}
# Ratings (in tenths) injected out of the valid range [0, 5].
BAD_RATINGS = np.array([-10, -5, -1, 51, 55, 60, 70, 85, 99], dtype=np.int64)

_SPECS = [s for d in DEPARTMENTS for s in SPECIALIZATIONS[d]]
_SPEC_OFFSET = np.cumsum([0] + [len(SPECIALIZATIONS[d]) for d in DEPARTMENTS])


def _specialization(rng: np.random.Generator, dept: np.ndarray) -> np.ndarray:
    return _SPEC_OFFSET[dept] + rng.integers(0, _SPEC_OFFSET[dept + 1] - _SPEC_OFFSET[dept])


def _ratings(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid ratings in tenths, 2.5 .. 5.0."""
    return np.clip(np.round(rng.normal(41, 5, n)), 25, 50).astype(np.int64)


def sample(rng: np.random.Generator, ids: np.ndarray) -> Frame:
    n = len(ids)
    gender = categorical(rng, n, [0.5, 0.5])
    dept = rng.integers(0, len(DEPARTMENTS), n)
    return {
        "instructor_id": np.asarray(ids, dtype=np.int64),
        "first": first_names(rng, gender),
        "last": rng.integers(0, len(LAST_NAMES), n),
        "dept": dept,
        "spec": _specialization(rng, dept),
        "rating": _ratings(rng, n),
        "email_num": np.full(n, -1, dtype=np.int64),
        "last_modified": seconds_between(rng, n, "2024-01-01", "2025-06-30"),
    }


def revise(rng: np.random.Generator, frame: Frame) -> Frame:
    """A re-sent version: a new (valid, different) rating; strictly newer last_modified."""
    n = len(frame["instructor_id"])
    out = dict(frame)
    out["rating"] = 25 + (frame["rating"] - 25 + rng.integers(1, 26, n)) % 26  # another value in 2.5..5.0
    out["last_modified"] = frame["last_modified"] + rng.integers(3_600, 60 * DAY, n)
    return out


def near_duplicates(rng: np.random.Generator, frame: Frame, first_id: int) -> Frame:
    """Copies under new ids: same names and department, another specialization/rating/e-mail."""
    n = len(frame["instructor_id"])
    out = dict(frame)
    out["instructor_id"] = first_id + np.arange(n, dtype=np.int64)
    out["spec"] = _specialization(rng, frame["dept"])
    out["rating"] = _ratings(rng, n)
    out["email_num"] = np.full(n, 2, dtype=np.int64)
    out["last_modified"] = seconds_between(rng, n, "2024-01-01", "2025-06-30")
    return out


def break_ratings(rng: np.random.Generator, frame: Frame, rows: np.ndarray) -> None:
    frame["rating"][rows] = BAD_RATINGS[rng.integers(0, len(BAD_RATINGS), len(rows))]


def to_table(frame: Frame) -> pa.Table:
    first = fmt.lookup(FIRST_NAMES, frame["first"])
    last = fmt.lookup(LAST_NAMES, frame["last"])
    num = frame["email_num"]
    suffix = pc.if_else(pa.array(num >= 0), fmt.ints(np.maximum(num, 0)), "")
    columns = {
        "instructor_id": fmt.ints(frame["instructor_id"]),
        "first_name": first,
        "last_name": last,
        "department": fmt.lookup(DEPARTMENTS, frame["dept"]),
        "specialization": fmt.lookup(_SPECS, frame["spec"]),
        "rating": fmt.decimal(frame["rating"], 1),
        "email": pc.utf8_lower(fmt.join(first, ".", last, suffix, "@", EMAIL_DOMAIN_FACULTY)),
        "last_modified": fmt.timestamps(frame["last_modified"]),
    }
    return pa.table({c: columns[c] for c in COLUMNS})


def instructors_of(rng: np.random.Generator, frame: Frame, course_depts: np.ndarray) -> np.ndarray:
    """An instructor id per course, from the course's department when it has one."""
    ids = frame["instructor_id"]
    depts = frame["dept"]
    out = ids[rng.integers(0, len(ids), len(course_depts))]
    for d in np.unique(course_depts):  # one pass per department, not per row
        pool = ids[depts == d]
        rows = np.flatnonzero(course_depts == d)
        if len(pool):
            out[rows] = pool[rng.integers(0, len(pool), len(rows))]
    return out
