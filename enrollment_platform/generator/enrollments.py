"""Enrollments: clean sample, re-sent revision, quarantine defects, boundary values and rendering."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import fmt
from .courses import SEASONS
from .defects import RATES
from .frames import DAY, Frame, categorical, date_format_codes, day, note_parts, notes_text
from .names import ENROLLMENT_NOTES, PAYMENT_STATUSES, STATUSES

COLUMNS = [
    "enrollment_id",
    "student_id",
    "course_id",
    "instructor_id",
    "enrollment_date",
    "term",
    "status",
    "marks",
    "grade",
    "attendance_percentage",
    "payment_status",
    "tuition_amount",
    "notes",
    "last_modified",
]
DATE_COLUMNS = ["enrollment_date"]
NOISE_COLUMNS = {"status": "lower", "term": "upper", "grade": "upper"}

# Blocking defects: each makes exactly one row go to quarantine.
QUARANTINE_DEFECTS = [
    "marks_out_of_range",
    "attendance_out_of_range",
    "missing_enrollment_date",
    "missing_enrollment_id",
    "orphan_student_id",
    "orphan_course_id",
]
# Valid rows on the inclusive bounds: (column in the frame, value in its scaled unit).
BOUNDARY_DEFECTS = {
    "boundary_marks_0": ("marks", 0),
    "boundary_marks_100": ("marks", 1_000),
    "boundary_attendance_0": ("attendance", 0),
    "boundary_attendance_100": ("attendance", 10_000),
}
GRADES = ["A", "B", "C", "D", "F"]
FIRST_FINISHED_DAY = day("2025-06-01")  # courses ending before this are over


def sample(
    rng: np.random.Generator,
    ids: np.ndarray,
    n_students: int,
    courses: Frame,
    course_instructor: np.ndarray,
) -> Frame:
    """Clean enrollments: marks in [1, 99] and attendance in (0, 100), so bounds appear only when injected."""
    n = len(ids)
    course = rng.integers(0, len(courses["course_id"]), n)
    start = courses["start"][course]
    finished = courses["end"][course] < FIRST_FINISHED_DAY
    status = np.where(finished, categorical(rng, n, [0.03, 0.87, 0.10]), categorical(rng, n, [0.82, 0.08, 0.10]))
    marks = np.clip(np.round(rng.normal(750, 130, n)), 10, 990).astype(np.int64)  # tenths
    integral = rng.random(n) < 0.5
    marks = np.where(integral, np.clip(np.round(marks, -1), 10, 990), marks)
    edate = start - rng.integers(0, 75, n)
    frame: Frame = {
        "enrollment_id": np.asarray(ids, dtype=np.int64),
        "enrollment_id_missing": np.zeros(n, dtype=bool),
        "student_id": rng.integers(1, n_students + 1, n),
        "course_id": courses["course_id"][course],
        "instructor_id": course_instructor[course],
        "edate": edate,
        "enrollment_date_fmt": date_format_codes(rng, n, RATES["date_formats"]),
        "enrollment_date_missing": np.zeros(n, dtype=bool),
        "season": courses["season"][course],
        "year": courses["year"][course],
        "status": status,
        "marks": marks,
        "marks_integral": integral,
        "attendance": np.clip(np.round(rng.beta(8, 1.5, n) * 10_000), 1, 9_999).astype(np.int64),  # hundredths
        "payment": categorical(rng, n, [0.7, 0.2, 0.1]),
        "tuition": rng.integers(100_000, 600_001, n),  # cents
        "last_modified": edate * DAY + rng.integers(DAY, 240 * DAY, n),
    }
    frame |= note_parts(rng, n, len(ENROLLMENT_NOTES), RATES["notes_plain"], RATES["notes_with_pii"])
    return frame


def revise(rng: np.random.Generator, frame: Frame) -> Frame:
    """A re-sent version: another status, marks moved (still in [1, 99]); strictly newer last_modified."""
    n = len(frame["enrollment_id"])
    out = dict(frame)
    out["status"] = (frame["status"] + rng.integers(1, len(STATUSES), n)) % len(STATUSES)
    out["marks"] = np.clip(frame["marks"] + rng.integers(-80, 81, n), 10, 990)
    out["payment"] = np.where(rng.random(n) < 0.5, 0, frame["payment"])
    out["last_modified"] = frame["last_modified"] + rng.integers(3_600, 60 * DAY, n)
    return out


def inject_quarantine(
    rng: np.random.Generator, frame: Frame, picks: dict[str, np.ndarray], n_students: int, max_course_id: int
) -> None:
    """Break each picked row in exactly one blocking way (in place)."""
    rows = picks["marks_out_of_range"]
    low = rng.random(len(rows)) < 0.3
    frame["marks"][rows] = np.where(low, -rng.integers(1, 201, len(rows)), rng.integers(1_001, 1_501, len(rows)))
    rows = picks["attendance_out_of_range"]
    low = rng.random(len(rows)) < 0.3
    frame["attendance"][rows] = np.where(
        low, -rng.integers(1, 2_001, len(rows)), rng.integers(10_001, 15_001, len(rows))
    )
    frame["enrollment_date_missing"][picks["missing_enrollment_date"]] = True
    frame["enrollment_id_missing"][picks["missing_enrollment_id"]] = True
    rows = picks["orphan_student_id"]
    frame["student_id"][rows] = n_students + 1 + rng.integers(0, max(1_000, n_students), len(rows))
    rows = picks["orphan_course_id"]
    frame["course_id"][rows] = max_course_id + 1 + rng.integers(0, 1_000, len(rows))


def inject_boundaries(frame: Frame, picks: dict[str, np.ndarray]) -> None:
    for kind, (column, value) in BOUNDARY_DEFECTS.items():
        frame[column][picks[kind]] = value


def grade_codes(marks_tenths: np.ndarray) -> np.ndarray:
    m = marks_tenths
    return np.select([m >= 900, m >= 800, m >= 700, m >= 600], [0, 1, 2, 3], 4)


def to_table(frame: Frame) -> pa.Table:
    term = fmt.join(fmt.lookup(SEASONS, frame["season"]), fmt.ints(frame["year"]))
    columns = {
        "enrollment_id": fmt.with_nulls(fmt.ints(frame["enrollment_id"]), frame["enrollment_id_missing"]),
        "student_id": fmt.ints(frame["student_id"]),
        "course_id": fmt.ints(frame["course_id"]),
        "instructor_id": fmt.ints(frame["instructor_id"]),
        "enrollment_date": fmt.dates(frame["edate"], frame["enrollment_date_fmt"], frame["enrollment_date_missing"]),
        "term": term,
        "status": fmt.lookup(STATUSES, frame["status"]),
        "marks": fmt.decimal(frame["marks"], 1, frame["marks_integral"]),
        "grade": fmt.lookup(GRADES, grade_codes(frame["marks"])),
        "attendance_percentage": fmt.decimal(frame["attendance"], 2),
        "payment_status": fmt.lookup(PAYMENT_STATUSES, frame["payment"]),
        "tuition_amount": fmt.decimal(frame["tuition"], 2),
        "notes": notes_text(frame, ENROLLMENT_NOTES),
        "last_modified": fmt.timestamps(frame["last_modified"]),
    }
    return pa.table({c: columns[c] for c in COLUMNS})
