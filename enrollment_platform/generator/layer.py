"""Generate a whole raw layer (four datasets with seeded defects) and its manifest."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa

from . import courses, fmt, instructors, students, writers
from . import enrollments as enrollment_rows  # the module; `enrollments` is an argument below
from .defects import RATES, add_noise, count, pick_disjoint, placement
from .frames import DAY, Frame, concat, has_pii_note, size, take

MIN_ENROLLMENTS = 20
STUDENTS_PER_CSV = 200_000
ENROLLMENTS_PER_CSV = 250_000
ENROLLMENTS_PER_PART = 10_000_000  # made and written a part at a time (about 0.5 GB of memory per million rows)
MIN_ENROLLMENT_CSV_FILES = 2
FIRST_ID = {"students": 1, "courses": 101, "instructors": 201, "enrollments": 1_000_001}
ID_COLUMN = {
    "students": "student_id",
    "courses": "course_id",
    "instructors": "instructor_id",
    "enrollments": "enrollment_id",
}
DEDUP_DEFECTS = ["exact_duplicate_rows", "resent_records", "repeated_ids"]
ROW_SEMANTICS = (
    "rows_in counts every row in every file; exact copies and then, per primary key, every row but the one "
    "with the greatest last_modified (never tied) are rows_duplicate; rows with an empty primary key are "
    "never grouped together; noisy_rows, notes_with_pii, boundary_values and date_formats count rows/cells "
    "as written (copies included); the other defect counts are the number of injected rows."
)


def sizes(n_enrollments: int) -> dict[str, int]:
    """Clean (base) rows per dataset for ``n_enrollments`` enrollments."""
    n_courses = max(20, min(5000, n_enrollments // 400))
    return {
        "students": max(50, n_enrollments // 8),
        "courses": n_courses,
        "instructors": max(10, n_courses // 4),
        "enrollments": n_enrollments,
    }


def _ids(name: str, n: int, first: dict[str, int]) -> np.ndarray:
    return first[name] + np.arange(n, dtype=np.int64)


def _dedup_counts(n: int) -> dict[str, int]:
    return {kind: count(RATES[kind], n) for kind in DEDUP_DEFECTS}


def _build(
    rng: np.random.Generator,
    name: str,
    module: ModuleType,
    base: Frame,
    picks: dict[str, np.ndarray],
    fresh: Callable[[int], Frame],
    in_place_extra: Frame | None = None,
) -> tuple[pa.Table, dict]:
    """Add re-sent and repeated-id rows, render, add noise, place exact copies; return rows and counts."""
    id_col = ID_COLUMN[name]
    resent = module.revise(rng, take(base, picks["resent_records"]))
    src = picks["repeated_ids"]
    repeated = fresh(len(src))
    repeated[id_col] = base[id_col][src].copy()
    shift = rng.integers(60, 30 * DAY, len(src)) * np.where(rng.random(len(src)) < 0.5, -1, 1)
    repeated["last_modified"] = base["last_modified"][src] + shift
    in_place = base if in_place_extra is None else concat(base, in_place_extra)
    rows = concat(in_place, resent, repeated)
    table = module.to_table(rows)
    table, noisy = add_noise(rng, table, count(RATES["noisy_rows"], size(rows)), module.NOISE_COLUMNS)
    order = placement(rng, size(in_place), size(rows), picks["exact_duplicate_rows"])
    counts = {kind: len(picks[kind]) for kind in DEDUP_DEFECTS}
    counts["noisy_rows"] = int(noisy[order].sum())
    if "note" in rows:
        counts["notes_with_pii"] = int(has_pii_note(rows)[order].sum())
    if module.DATE_COLUMNS:
        formats = np.zeros(len(fmt.DATE_FORMATS), dtype=np.int64)
        for col in module.DATE_COLUMNS:
            present = ~rows.get(f"{col}_missing", np.zeros(size(rows), dtype=bool))[order]
            codes = rows[f"{col}_fmt"][order][present]
            formats += np.bincount(codes, minlength=len(fmt.DATE_FORMATS))
        counts["date_formats"] = dict(zip(fmt.DATE_FORMATS, (int(c) for c in formats), strict=True))
    return table.take(pa.array(order)), counts


def _expected(table: pa.Table, defects: dict, quarantined: int) -> dict[str, int]:
    duplicate = sum(defects[kind] for kind in DEDUP_DEFECTS)
    rows_in = table.num_rows
    return {
        "rows_in": rows_in,
        "rows_out": rows_in - quarantined - duplicate,
        "rows_quarantined": quarantined,
        "rows_duplicate": duplicate,
    }


def _split_off(rng: np.random.Generator, table: pa.Table, share: float) -> tuple[pa.Table, pa.Table]:
    """(rest, part): a random ``share`` of the rows (at least one) moved to a second file, order kept."""
    n = table.num_rows
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=count(share, n), replace=False)] = True
    return table.filter(pa.array(~mask)), table.filter(pa.array(mask))


def _write_parts(
    out: Path, folder: str, stem: str, table: pa.Table, max_rows: int, min_parts: int = 1
) -> dict[str, int]:
    files = {}
    for i, (start, stop) in enumerate(writers.chunks(table.num_rows, max_rows, min_parts)):
        rel = f"{folder}/{stem}_{i:04d}.csv"
        writers.write_csv(out / rel, table.slice(start, stop - start))
        files[rel] = stop - start
    return files


def _entry(files: dict[str, int], defects: dict, expected: dict) -> dict:
    return {
        "files": sorted(files),
        "file_rows": dict(sorted(files.items())),
        "defects": defects,
        "expected": expected,
    }


def _instructors(rng: np.random.Generator, out: Path, n: dict[str, int], first: dict[str, int]) -> tuple[dict, Frame]:
    """Out-of-range ratings (nullified downstream) and near-duplicates under new ids."""
    inst = instructors.sample(rng, _ids("instructors", n["instructors"], first))
    extra = {k: count(RATES[k], n["instructors"]) for k in ("rating_out_of_range", "near_duplicate_instructors")}
    picks = pick_disjoint(rng, n["instructors"], _dedup_counts(n["instructors"]) | extra)
    instructors.break_ratings(rng, inst, picks["rating_out_of_range"])
    near = instructors.near_duplicates(
        rng, take(inst, picks["near_duplicate_instructors"]), first["instructors"] + n["instructors"]
    )

    def fresh(k: int) -> Frame:
        return instructors.sample(rng, np.zeros(k, np.int64))

    table, defects = _build(rng, "instructors", instructors, inst, picks, fresh, near)
    defects |= {kind: len(picks[kind]) for kind in extra}
    writers.write_csv(out / "instructors/instructors.csv", table)
    files = {"instructors/instructors.csv": table.num_rows}
    return _entry(files, defects, _expected(table, defects, 0)), inst


def _courses(
    rng: np.random.Generator, out: Path, n: dict[str, int], first: dict[str, int], inst: Frame
) -> tuple[dict, Frame, np.ndarray]:
    """Courses, and the instructor id teaching each (from the course's department when possible)."""
    crs = courses.sample(rng, _ids("courses", n["courses"], first))
    course_instructor = instructors.instructors_of(rng, inst, crs["dept"])
    picks = pick_disjoint(rng, n["courses"], _dedup_counts(n["courses"]))

    def fresh(k: int) -> Frame:
        return courses.sample(rng, np.zeros(k, np.int64))

    table, defects = _build(rng, "courses", courses, crs, picks, fresh)
    writers.write_csv(out / "courses/courses.csv", table)
    files = {"courses/courses.csv": table.num_rows}
    return _entry(files, defects, _expected(table, defects, 0)), crs, course_instructor


def _students(rng: np.random.Generator, out: Path, n: dict[str, int], first: dict[str, int]) -> dict:
    """CSV parts plus a JSON-lines part; no defect that would quarantine a student."""
    stu = students.sample(rng, _ids("students", n["students"], first))
    picks = pick_disjoint(rng, n["students"], _dedup_counts(n["students"]))

    def fresh(k: int) -> Frame:
        return students.sample(rng, np.zeros(k, np.int64))

    table, defects = _build(rng, "students", students, stu, picks, fresh)
    rest, part = _split_off(rng, table, RATES["students_jsonl"])
    files = _write_parts(out, "students", "students", rest, STUDENTS_PER_CSV)
    writers.write_jsonl(out / "students/students_extra.jsonl", part)
    files["students/students_extra.jsonl"] = part.num_rows
    return _entry(files, defects, _expected(table, defects, 0))


def _enrollments(
    rng: np.random.Generator,
    out: Path,
    n: dict[str, int],
    first: dict[str, int],
    crs: Frame,
    course_instructor: np.ndarray,
) -> dict:
    """The enrollments, made and written one part at a time (`part_sizes`): memory grows with a part, not with
    the layer (a whole 50 M layer at once did not fit in 23 GB). Each part has its own id range and its own seeded
    defects; duplicates stay within a part. The manifest entry adds up the parts."""
    files: dict[str, int] = {}
    defects: dict = {}
    expected: dict[str, int] = {}
    parts = part_sizes(n["enrollments"])
    first_id = first["enrollments"]
    for i, rows in enumerate(parts):
        suffix = "" if len(parts) == 1 else f"_part{i:03d}"
        part = _enrollment_part(rng, out, n, first | {"enrollments": first_id}, rows, suffix, crs, course_instructor)
        files |= part[0]
        defects, expected = _added(defects, part[1]), _added(expected, part[2])
        first_id += rows
    return _entry(files, defects, expected)


def part_sizes(rows: int, per_part: int | None = None) -> list[int]:
    """`rows` split into as few near-equal parts as keep each within `per_part` (ENROLLMENTS_PER_PART)."""
    per_part = per_part or ENROLLMENTS_PER_PART
    parts = -(-rows // per_part)
    return [rows // parts + (1 if i < rows % parts else 0) for i in range(parts)]


def _added(total: dict, part: dict) -> dict:
    """Counts added key by key (nested counts too)."""
    result = dict(total)
    for k, v in part.items():
        result[k] = _added(result.get(k, {}), v) if isinstance(v, dict) else result.get(k, 0) + v
    return result


def _enrollment_part(
    rng: np.random.Generator,
    out: Path,
    n: dict[str, int],
    first: dict[str, int],
    n_rows: int,
    suffix: str,
    crs: Frame,
    course_instructor: np.ndarray,
) -> tuple[dict[str, int], dict, dict[str, int]]:
    """CSV parts plus a late Parquet part; blocking (quarantine) defects and boundary values: (files, defects,
    expected counts)."""
    student_shift = first["students"] - 1  # `sample` draws student ids 1..n_students

    def fresh(k: int) -> Frame:
        frame = enrollment_rows.sample(rng, np.zeros(k, np.int64), n["students"], crs, course_instructor)
        frame["student_id"] += student_shift
        return frame

    enr = fresh(n_rows)
    enr["enrollment_id"] = _ids("enrollments", n_rows, first)
    special = {k: count(RATES[k], n_rows) for k in enrollment_rows.QUARANTINE_DEFECTS}
    special |= {k: count(RATES["boundary_values"], n_rows) for k in enrollment_rows.BOUNDARY_DEFECTS}
    picks = pick_disjoint(rng, n_rows, _dedup_counts(n_rows) | special)
    enrollment_rows.inject_quarantine(rng, enr, picks, n["students"], first["courses"] + n["courses"] - 1)
    enr["student_id"][picks["orphan_student_id"]] += student_shift  # still past the last student id
    enrollment_rows.inject_boundaries(enr, picks)
    table, counts = _build(rng, "enrollments", enrollment_rows, enr, picks, fresh)
    del enr  # rendered into `table`: freed before the copies below, which matter at 10 M rows a part
    rest, part = _split_off(rng, table, RATES["enrollments_parquet"])
    stem = f"enrollments{suffix}"
    files = _write_parts(out, "enrollments", stem, rest, ENROLLMENTS_PER_CSV, MIN_ENROLLMENT_CSV_FILES)
    late = f"enrollments/enrollments_late{suffix}.parquet"
    writers.write_parquet(out / late, part)
    files[late] = part.num_rows
    quarantined = sum(len(picks[k]) for k in enrollment_rows.QUARANTINE_DEFECTS)
    defects = {kind: counts[kind] for kind in DEDUP_DEFECTS}
    defects |= {kind: len(picks[kind]) for kind in enrollment_rows.QUARANTINE_DEFECTS}
    defects["noisy_rows"] = counts["noisy_rows"]
    defects["boundary_values"] = sum(len(picks[k]) for k in enrollment_rows.BOUNDARY_DEFECTS)
    defects["notes_with_pii"] = counts["notes_with_pii"]
    defects["date_formats"] = counts["date_formats"]
    return files, defects, _expected(table, defects, quarantined)


def generate_raw_layer(
    out_dir: str | Path, enrollments: int, seed: int = 0, first_ids: Mapping[str, int] | None = None
) -> dict:
    """Write a raw layer with ``enrollments`` clean enrollments (plus seeded defects) under ``out_dir``.

    ``first_ids`` moves where a dataset's ids start (default ``FIRST_ID``), e.g. ``{"enrollments": 2_000_001}``
    for a later delivery whose enrollments do not reuse an earlier layer's ids; references between the
    datasets follow the moved ids. Same arguments → byte-identical files. Returns the manifest, also written to
    ``_manifest.json``.
    """
    unknown = set(first_ids or {}) - set(FIRST_ID)
    if unknown:
        raise ValueError(f"first_ids: unknown datasets {sorted(unknown)}; known: {sorted(FIRST_ID)}")
    first = FIRST_ID | {name: int(value) for name, value in (first_ids or {}).items()}
    n_enrollments = int(enrollments)
    if n_enrollments < MIN_ENROLLMENTS:
        raise ValueError(f"enrollments must be at least {MIN_ENROLLMENTS}, got {n_enrollments}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writers.clear_previous(out)
    rng = np.random.default_rng(seed)
    n = sizes(n_enrollments)
    inst_entry, inst = _instructors(rng, out, n, first)
    course_entry, crs, course_instructor = _courses(rng, out, n, first, inst)
    student_entry = _students(rng, out, n, first)
    manifest = {
        "generator": "enrollment_platform.generator",
        "seed": int(seed),
        "enrollments_requested": n_enrollments,
        "row_semantics": ROW_SEMANTICS,
        "rates": json.loads(json.dumps(RATES)),
        "datasets": {
            "enrollments": _enrollments(rng, out, n, first, crs, course_instructor),
            "students": student_entry,
            "courses": course_entry,
            "instructors": inst_entry,
        },
    }
    (out / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
