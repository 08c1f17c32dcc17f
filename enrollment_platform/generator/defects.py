"""Seeded defects: their rates, disjoint row selection, text noise and the placement of extra rows.

Every rate is a share of the dataset's clean (base) rows; with few rows each defect kind still occurs at
least once (``count``). Row-count-changing defects and the boundary/rating rows are drawn as DISJOINT sets
of clean rows (``pick_disjoint``); noise, date formats and PII notes overlay any row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RATES: dict = {
    # an identical copy (every column, byte for byte) of a clean row, elsewhere in the layer
    "exact_duplicate_rows": 0.01,
    # a clean row sent again: same id, a few other values changed, strictly newer last_modified
    "resent_records": 0.005,
    # a new clean record reusing the id of another clean row, with a different last_modified
    "repeated_ids": 0.002,
    # enrollments only, blocking (quarantine), one defect per row
    "marks_out_of_range": 0.005,
    "attendance_out_of_range": 0.005,
    "missing_enrollment_date": 0.005,
    "missing_enrollment_id": 0.005,
    "orphan_student_id": 0.005,
    "orphan_course_id": 0.005,
    # enrollments only, valid rows exactly on a bound: per kind (marks 0, marks 100, attendance 0, 100)
    "boundary_values": 0.0005,
    # instructors only: rating outside [0, 5] (non-blocking), and copies under new ids (kept)
    "rating_out_of_range": 0.03,
    "near_duplicate_instructors": 0.03,
    # rows with leading/trailing blanks or case changes in one or two text columns (share of all rows)
    "noisy_rows": 0.10,
    # students/enrollments: notes with a phone, SSN or e-mail; other non-empty notes; the rest empty
    "notes_with_pii": 0.05,
    "notes_plain": 0.15,
    # share of each date format among date cells
    "date_formats": {"iso": 0.70, "m/d/yyyy": 0.20, "mm/dd/yyyy": 0.10},
    # share of rows written to the second format of a dataset
    "students_jsonl": 0.05,
    "enrollments_parquet": 0.03,
}


def count(rate: float, n: int) -> int:
    """How many rows get a defect of this rate among ``n``: at least one."""
    return max(1, round(rate * n))


def pick_disjoint(rng: np.random.Generator, n: int, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Disjoint sorted row sets of the given sizes among ``n`` rows."""
    total = sum(counts.values())
    if total > n:
        raise ValueError(f"{total} defect rows requested among {n} rows")
    chosen = rng.choice(n, size=total, replace=False)
    picks, start = {}, 0
    for name, k in counts.items():
        picks[name] = np.sort(chosen[start : start + k])
        start += k
    return picks


def _case_variants(arr: pa.Array, case: str | None) -> list[pa.Array]:
    if case == "title":
        return [pc.utf8_upper(arr), pc.utf8_lower(arr), pc.utf8_swapcase(arr)]
    if case == "lower":
        return [pc.utf8_upper(arr), pc.utf8_capitalize(arr)]
    if case == "upper":
        return [pc.utf8_lower(arr), pc.utf8_capitalize(arr)]
    return []


def _noisy_values(rng: np.random.Generator, arr: pa.Array, case: str | None) -> pa.Array:
    blanks = [
        pc.binary_join_element_wise(" ", arr, ""),
        pc.binary_join_element_wise(arr, " ", ""),
        pc.binary_join_element_wise("  ", arr, "  ", ""),
    ]
    cased = _case_variants(arr, case)
    # half of the noise is blanks, half case (when the column has a canonical case)
    use_case = rng.random(len(arr)) < (0.5 if cased else 0.0)
    code = np.where(use_case, len(blanks) + rng.integers(0, max(1, len(cased)), len(arr)), rng.integers(0, 3, len(arr)))
    return pc.choose(pa.array(code.astype(np.int8)), *blanks, *cased)


def scatter(arr: pa.Array, positions: np.ndarray, values: pa.Array) -> pa.Array:
    """``arr`` with ``values`` put at ``positions``."""
    idx = np.arange(len(arr), dtype=np.int64)
    idx[positions] = len(arr) + np.arange(len(positions), dtype=np.int64)
    return pa.concat_arrays([arr, values]).take(pa.array(idx))


def add_noise(
    rng: np.random.Generator, table: pa.Table, n_rows: int, columns: dict[str, str | None]
) -> tuple[pa.Table, np.ndarray]:
    """Blank/case noise in one or two of ``columns`` on ``n_rows`` rows; returns the table and a mask of
    the rows whose text really changed."""
    n = table.num_rows
    rows = rng.choice(n, size=min(n_rows, n), replace=False)
    names = list(columns)
    first = rng.integers(0, len(names), len(rows))
    second = np.where(rng.random(len(rows)) < 0.3, rng.integers(0, len(names), len(rows)), -1)
    changed = np.zeros(n, dtype=bool)
    for j, name in enumerate(names):
        pos = np.sort(rows[(first == j) | (second == j)])
        if not len(pos):
            continue
        old = table.column(name).combine_chunks()
        before = old.take(pa.array(pos))
        after = _noisy_values(rng, before, columns[name])
        diff = pc.fill_null(pc.not_equal(before, after), False).to_numpy(zero_copy_only=False)
        changed[pos[diff]] = True
        table = table.set_column(table.schema.get_field_index(name), name, scatter(old, pos, after))
    return table, changed


def placement(rng: np.random.Generator, n_in_place: int, n_rows: int, copies: np.ndarray) -> np.ndarray:
    """Row order of a dataset: rows ``[0, n_in_place)`` keep their order; the other rows and the exact
    copies (``copies``: indices of the rows they copy) land at random positions among them.

    Returns indices into the dataset's rows (copies appear as their original's index)."""
    source = np.concatenate([np.arange(n_rows, dtype=np.int64), np.asarray(copies, dtype=np.int64)])
    key = np.arange(len(source), dtype=np.float64)
    key[n_in_place:] = rng.random(len(source) - n_in_place) * n_in_place
    return source[np.argsort(key, kind="stable")]
