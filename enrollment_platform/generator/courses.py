"""Courses: clean sample, re-sent revision and text rendering."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import fmt
from .defects import RATES
from .frames import DAY, Frame, categorical, date_format_codes, day
from .names import COURSE_TITLE_SUFFIXES, COURSE_TITLES, DEPARTMENTS

COLUMNS = ["course_id", "course_name", "department", "credits", "start_date", "end_date", "last_modified"]
DATE_COLUMNS = ["start_date", "end_date"]
NOISE_COLUMNS = {"department": "title", "course_name": None}

SEASONS = ["SPRING", "SUMMER", "FALL"]
YEARS = [2023, 2024, 2025]
# per season: (month-day of the earliest start, spread of starts in days, (min, max) length in days)
_SEASON_SHAPE = [("01-08", 15, (105, 120)), ("06-01", 14, (50, 70)), ("08-20", 17, (105, 118))]

_TITLES = [t for d in DEPARTMENTS for t in COURSE_TITLES[d]]
_TITLE_OFFSET = np.cumsum([0] + [len(COURSE_TITLES[d]) for d in DEPARTMENTS])


def sample(rng: np.random.Generator, ids: np.ndarray) -> Frame:
    n = len(ids)
    dept = rng.integers(0, len(DEPARTMENTS), n)
    count = _TITLE_OFFSET[dept + 1] - _TITLE_OFFSET[dept]
    season = rng.integers(0, len(SEASONS), n)
    year = np.asarray(YEARS, dtype=np.int64)[rng.integers(0, len(YEARS), n)]
    first_day = np.array([[day(f"{y}-{s[0]}") for s in _SEASON_SHAPE] for y in YEARS], dtype=np.int64)
    spread = np.array([s[1] for s in _SEASON_SHAPE])[season]
    start = first_day[year - YEARS[0], season] + rng.integers(0, spread)
    lo = np.array([s[2][0] for s in _SEASON_SHAPE])[season]
    hi = np.array([s[2][1] for s in _SEASON_SHAPE])[season]
    end = start + rng.integers(lo, hi + 1)
    return {
        "course_id": np.asarray(ids, dtype=np.int64),
        "dept": dept,
        "title": _TITLE_OFFSET[dept] + rng.integers(0, count),
        "title_suffix": rng.integers(0, len(COURSE_TITLE_SUFFIXES), n),
        "credits": 1 + categorical(rng, n, [0.05, 0.15, 0.5, 0.25, 0.05]),
        "season": season,
        "year": year,
        "start": start,
        "start_date_fmt": date_format_codes(rng, n, RATES["date_formats"]),
        "end": end,
        "end_date_fmt": date_format_codes(rng, n, RATES["date_formats"]),
        "last_modified": start * DAY - rng.integers(30 * DAY, 120 * DAY, n),
    }


def revise(rng: np.random.Generator, frame: Frame) -> Frame:
    """A re-sent version: credits and end date changed; strictly newer last_modified."""
    n = len(frame["course_id"])
    out = dict(frame)
    out["credits"] = (frame["credits"] - 1 + rng.integers(1, 5, n)) % 5 + 1  # another value in 1..5
    out["end"] = frame["end"] + rng.integers(1, 15, n)
    out["last_modified"] = frame["last_modified"] + rng.integers(3_600, 30 * DAY, n)
    return out


def term_codes(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """(season code, year) of each course, for the enrollments' term."""
    return frame["season"], frame["year"]


def to_table(frame: Frame) -> pa.Table:
    name = fmt.join(fmt.lookup(_TITLES, frame["title"]), fmt.lookup(COURSE_TITLE_SUFFIXES, frame["title_suffix"]))
    columns = {
        "course_id": fmt.ints(frame["course_id"]),
        "course_name": name,
        "department": fmt.lookup(DEPARTMENTS, frame["dept"]),
        "credits": fmt.ints(frame["credits"]),
        "start_date": fmt.dates(frame["start"], frame["start_date_fmt"]),
        "end_date": fmt.dates(frame["end"], frame["end_date_fmt"]),
        "last_modified": fmt.timestamps(frame["last_modified"]),
    }
    return pa.table({c: columns[c] for c in COLUMNS})
