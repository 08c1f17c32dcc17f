"""The raw-data generator: determinism, manifest identity, defects visible in the files, file formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from enrollment_platform.generator import RATES, generate_raw_layer, names, sizes, writers
from enrollment_platform.generator.layer import MIN_ENROLLMENTS

SAMPLE = Path(__file__).resolve().parents[1] / "enrollment_platform" / "sample_data" / "raw"
COLUMNS = {
    "students": "student_id,first_name,last_name,date_of_birth,gender,email,phone,ssn,address,city,state,"
    "postal_code,major,notes,last_modified",
    "courses": "course_id,course_name,department,credits,start_date,end_date,last_modified",
    "instructors": "instructor_id,first_name,last_name,department,specialization,rating,email,last_modified",
    "enrollments": "enrollment_id,student_id,course_id,instructor_id,enrollment_date,term,status,marks,grade,"
    "attendance_percentage,payment_status,tuition_amount,notes,last_modified",
}
DATE_COLUMNS = {
    "students": ["date_of_birth"],
    "courses": ["start_date", "end_date"],
    "enrollments": ["enrollment_date"],
}
DATE_PATTERNS = {
    "iso": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "m/d/yyyy": re.compile(r"^(?!0)\d{1,2}/(?!0)\d{1,2}/\d{4}$"),
    "mm/dd/yyyy": re.compile(r"^\d{2}/\d{2}/\d{4}$"),
}
PII_IN_TEXT = re.compile(
    r"\d{3}-\d{2}-\d{4}|[\w.]+@[\w.]+|\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}|\+1 \d{3} \d{3} \d{4}|\b\d{10}\b"
)
NOISE = {  # column -> canonical form of its values
    "students": {"first_name": str.title, "last_name": str.title, "email": str.lower, "city": str.title},
    "courses": {"department": str.title},
    "instructors": {
        "first_name": str.title,
        "last_name": str.title,
        "email": str.lower,
        "department": str.title,
    },
    "enrollments": {"status": str.lower, "term": str.upper, "grade": str.upper},
}
NOISE_TRIM_ONLY = {"students": ["major"], "courses": ["course_name"], "instructors": ["specialization"]}


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("raw")
    return out, generate_raw_layer(out, 400, seed=7)


def rows(root: Path, dataset: str) -> list[dict]:
    """Every row of a dataset as written, all values text (None for empty/null)."""
    folder = root / dataset
    con = duckdb.connect()
    parts = [f"SELECT * FROM read_csv('{folder}/*.csv', all_varchar=true, header=true)"]
    if list(folder.glob("*.jsonl")):
        cols = ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS[dataset].split(","))
        parts.append(f"SELECT * FROM read_json('{folder}/*.jsonl', columns={{{cols}}})")
    if list(folder.glob("*.parquet")):
        parts.append(f"SELECT * FROM read_parquet('{folder}/*.parquet')")
    cur = con.execute(" UNION ALL BY NAME ".join(parts))
    names_ = [d[0] for d in cur.description]
    return [dict(zip(names_, r, strict=True)) for r in cur.fetchall()]


def num(v: str | None) -> float | None:
    return None if v is None else float(v)


def key(row: dict) -> tuple:
    return tuple(sorted(row.items()))


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert generate_raw_layer(a, 300, seed=11) == generate_raw_layer(b, 300, seed=11)
    generate_raw_layer(c, 300, seed=12)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "enrollments/enrollments_0000.csv").read_bytes() != (
        c / "enrollments/enrollments_0000.csv"
    ).read_bytes()


def test_bundled_sample_is_the_generator_output(tmp_path):
    manifest = json.loads((SAMPLE / "_manifest.json").read_text())
    assert (manifest["seed"], manifest["enrollments_requested"]) == (7, 400)
    assert generate_raw_layer(tmp_path, 400, seed=7) == manifest
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (SAMPLE / rel).read_bytes(), rel


def test_first_ids_move_the_ids_and_the_references_follow(tmp_path):
    moved, plain = tmp_path / "moved", tmp_path / "plain"
    first = {"students": 5_001, "courses": 9_001, "instructors": 7_001, "enrollments": 50_000_001}
    manifest = generate_raw_layer(moved, 400, seed=5, first_ids=first)
    assert generate_raw_layer(plain, 400, seed=5, first_ids={}) == generate_raw_layer(plain, 400, seed=5)
    n = sizes(400)
    con = duckdb.connect()

    def ids(dataset: str, column: str) -> set[int]:
        """Distinct ids in every file of the dataset (CSV, JSON lines, Parquet)."""
        readers = [f"read_csv('{moved}/{dataset}/*.csv', all_varchar=true)"]
        readers += [f"read_json('{path}')" for path in (moved / dataset).glob("*.jsonl")]
        readers += [f"read_parquet('{path}')" for path in (moved / dataset).glob("*.parquet")]
        union = " UNION ALL ".join(f"SELECT CAST({column} AS VARCHAR) AS v FROM {r}" for r in readers)
        found = con.execute(f"SELECT DISTINCT TRY_CAST(v AS BIGINT) FROM ({union})").fetchall()
        return {v for (v,) in found if v is not None}

    for dataset, column in [("students", "student_id"), ("courses", "course_id"), ("enrollments", "enrollment_id")]:
        found = ids(dataset, column)
        assert min(found) == first[dataset] and max(found) == first[dataset] + n[dataset] - 1, dataset
    assert min(ids("instructors", "instructor_id")) == first["instructors"]
    students, courses = ids("students", "student_id"), ids("courses", "course_id")
    orphans = ids("enrollments", "student_id") - students
    assert len(orphans) == manifest["datasets"]["enrollments"]["defects"]["orphan_student_id"]
    assert min(orphans) > max(students)
    assert (
        len(ids("enrollments", "course_id") - courses)
        == manifest["datasets"]["enrollments"]["defects"]["orphan_course_id"]
    )
    assert ids("enrollments", "instructor_id") <= ids("instructors", "instructor_id")
    with pytest.raises(ValueError, match="unknown datasets"):
        generate_raw_layer(plain, 400, first_ids={"teachers": 1})


def test_manifest_identity_and_file_rows(layer):
    root, manifest = layer
    assert json.loads((root / "_manifest.json").read_text()) == manifest
    assert manifest["generator"] == "enrollment_platform.generator"
    assert set(manifest["datasets"]) == {"students", "courses", "instructors", "enrollments"}
    for dataset, entry in manifest["datasets"].items():
        exp = entry["expected"]
        assert exp["rows_in"] == exp["rows_out"] + exp["rows_quarantined"] + exp["rows_duplicate"], dataset
        assert exp["rows_in"] == sum(entry["file_rows"].values()) == len(rows(root, dataset))
        assert sorted(entry["file_rows"]) == entry["files"]
        assert all((root / f).is_file() for f in entry["files"])
        dup = entry["defects"]
        assert exp["rows_duplicate"] == dup["exact_duplicate_rows"] + dup["resent_records"] + dup["repeated_ids"]
    enr = manifest["datasets"]["enrollments"]
    quarantine = ["marks_out_of_range", "attendance_out_of_range", "missing_enrollment_date"]
    quarantine += ["missing_enrollment_id", "orphan_student_id", "orphan_course_id"]
    assert enr["expected"]["rows_quarantined"] == sum(enr["defects"][k] for k in quarantine)
    for dataset in ("students", "courses", "instructors"):
        assert manifest["datasets"][dataset]["expected"]["rows_quarantined"] == 0
    assert enr["expected"]["rows_out"] == 400 - enr["expected"]["rows_quarantined"]


def test_sizes():
    assert sizes(400) == {"students": 50, "courses": 20, "instructors": 10, "enrollments": 400}
    assert sizes(1_000_000) == {
        "students": 125_000,
        "courses": 2_500,
        "instructors": 625,
        "enrollments": 1_000_000,
    }
    assert sizes(10_000_000)["courses"] == 5_000


@pytest.mark.parametrize("seed", range(4))
def test_every_defect_kind_occurs_at_small_n(tmp_path, seed):
    manifest = generate_raw_layer(tmp_path, MIN_ENROLLMENTS, seed=seed)
    for dataset, entry in manifest["datasets"].items():
        for kind, value in entry["defects"].items():
            if kind == "date_formats":
                continue  # a share of a few cells; checked at N=400 below
            assert value >= 1, (seed, dataset, kind)
    with pytest.raises(ValueError):
        generate_raw_layer(tmp_path, MIN_ENROLLMENTS - 1)


def test_every_defect_kind_occurs_in_the_sample(layer):
    _, manifest = layer
    for dataset, entry in manifest["datasets"].items():
        for kind, value in entry["defects"].items():
            values = value.values() if isinstance(value, dict) else [value]
            assert all(v >= 1 for v in values), (dataset, kind)


def test_enrollment_defects_are_visible_in_the_files(layer):
    root, manifest = layer
    d = manifest["datasets"]["enrollments"]["defects"]
    enr = rows(root, "enrollments")
    student_ids = {r["student_id"] for r in rows(root, "students")}
    course_ids = {r["course_id"] for r in rows(root, "courses")}
    out_of_range = lambda v, hi: v is not None and not 0 <= float(v) <= hi  # noqa: E731
    assert sum(r["enrollment_id"] is None for r in enr) == d["missing_enrollment_id"]
    assert sum(r["enrollment_date"] is None for r in enr) == d["missing_enrollment_date"]
    assert sum(out_of_range(r["marks"], 100) for r in enr) == d["marks_out_of_range"]
    assert sum(out_of_range(r["attendance_percentage"], 100) for r in enr) == d["attendance_out_of_range"]
    assert sum(r["student_id"] not in student_ids for r in enr) == d["orphan_student_id"]
    assert sum(r["course_id"] not in course_ids for r in enr) == d["orphan_course_id"]
    bounds = sum(num(r["marks"]) in (0, 100) or num(r["attendance_percentage"]) in (0, 100) for r in enr)
    assert bounds == d["boundary_values"]
    for value, column in (
        (0, "marks"),
        (100, "marks"),
        (0, "attendance_percentage"),
        (100, "attendance_percentage"),
    ):
        assert any(num(r[column]) == value for r in enr), (column, value)
    # every bad row has exactly one defect
    bad = [
        r
        for r in enr
        if r["enrollment_id"] is None
        or r["enrollment_date"] is None
        or out_of_range(r["marks"], 100)
        or out_of_range(r["attendance_percentage"], 100)
        or r["student_id"] not in student_ids
        or r["course_id"] not in course_ids
    ]
    assert len(bad) == manifest["datasets"]["enrollments"]["expected"]["rows_quarantined"]


@pytest.mark.parametrize("dataset", ["students", "courses", "instructors", "enrollments"])
def test_duplicates_follow_the_row_semantics(layer, dataset):
    root, manifest = layer
    entry = manifest["datasets"][dataset]
    id_col = COLUMNS[dataset].split(",")[0]
    all_rows = rows(root, dataset)
    distinct = {key(r): r for r in all_rows}
    assert len(all_rows) - len(distinct) == entry["defects"]["exact_duplicate_rows"]
    groups: dict[str, list[dict]] = {}
    for r in distinct.values():
        if r[id_col] is not None:
            groups.setdefault(r[id_col], []).append(r)
    repeated = [g for g in groups.values() if len(g) > 1]
    assert sum(len(g) - 1 for g in repeated) == entry["defects"]["resent_records"] + entry["defects"]["repeated_ids"]
    for g in repeated:
        assert len(g) == 2
        stamps = sorted(r["last_modified"] for r in g)
        assert stamps[0] < stamps[1]  # the survivor is never ambiguous
    survivors = len(groups) + sum(r[id_col] is None for r in distinct.values())
    exp = entry["expected"]
    assert survivors == exp["rows_out"] + exp["rows_quarantined"]


def test_noise_pii_and_date_formats_are_counted_as_written(layer):
    root, manifest = layer
    for dataset, checks in NOISE.items():
        entry = manifest["datasets"][dataset]["defects"]
        data = rows(root, dataset)
        noisy = 0
        for r in data:
            changed = any(r[c] is not None and r[c] != canon(r[c].strip()) for c, canon in checks.items())
            changed |= any(r[c] is not None and r[c] != r[c].strip() for c in NOISE_TRIM_ONLY.get(dataset, []))
            noisy += changed
        assert noisy == entry["noisy_rows"], dataset
        if "notes_with_pii" in entry:
            pii = sum(r["notes"] is not None and bool(PII_IN_TEXT.search(r["notes"])) for r in data)
            assert pii == entry["notes_with_pii"], dataset
        if dataset in DATE_COLUMNS:
            # "10/15/2024" is both M/D/YYYY and MM/DD/YYYY: the manifest counts the format the generator used
            cells = [r[c] for r in data for c in DATE_COLUMNS[dataset] if r[c] is not None]
            assert all(any(p.match(v) for p in DATE_PATTERNS.values()) for v in cells)
            formats = entry["date_formats"]
            assert sum(bool(DATE_PATTERNS["iso"].match(v)) for v in cells) == formats["iso"]
            slashed = [v for v in cells if "/" in v]
            assert len(slashed) == formats["m/d/yyyy"] + formats["mm/dd/yyyy"]
            assert sum(not DATE_PATTERNS["mm/dd/yyyy"].match(v) for v in slashed) <= formats["m/d/yyyy"]
            assert sum(not DATE_PATTERNS["m/d/yyyy"].match(v) for v in slashed) <= formats["mm/dd/yyyy"]


def test_instructor_defects(layer):
    root, manifest = layer
    d = manifest["datasets"]["instructors"]["defects"]
    data = list({key(r): r for r in rows(root, "instructors")}.values())
    assert sum(not 0 <= float(r["rating"]) <= 5 for r in data) == d["rating_out_of_range"]
    assert all(re.fullmatch(r"-?\d\.\d", r["rating"]) for r in data)
    near = [r for r in data if re.search(r"2@", r["email"])]
    assert len(near) == d["near_duplicate_instructors"]
    for r in near:
        same = [o for o in data if o["instructor_id"] != r["instructor_id"] and o["last_name"] == r["last_name"]]
        assert any(o["first_name"] == r["first_name"] and o["department"] == r["department"] for o in same)


def test_file_formats(layer):
    root, manifest = layer
    for dataset, header in COLUMNS.items():
        for f in manifest["datasets"][dataset]["files"]:
            if f.endswith(".csv"):
                assert (root / f).read_text().splitlines()[0] == header
    enr_files = manifest["datasets"]["enrollments"]["files"]
    csvs = [f for f in enr_files if f.endswith(".csv")]
    assert len(csvs) >= 2 and all(re.fullmatch(r"enrollments/enrollments_\d{4}\.csv", f) for f in csvs)
    assert "enrollments/enrollments_late.parquet" in enr_files
    pfile = pq.ParquetFile(root / "enrollments/enrollments_late.parquet")
    assert pfile.schema_arrow.names == COLUMNS["enrollments"].split(",")
    assert all(str(t) == "string" for t in pfile.schema_arrow.types)
    meta = pfile.metadata.row_group(0)
    assert all(meta.column(i).compression == "SNAPPY" for i in range(meta.num_columns))
    stu_files = manifest["datasets"]["students"]["files"]
    assert stu_files == ["students/students_0000.csv", "students/students_extra.jsonl"]
    lines = (root / "students/students_extra.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert list(obj) == COLUMNS["students"].split(",")
        assert all(v is None or isinstance(v, str) for v in obj.values())
    assert manifest["datasets"]["courses"]["files"] == ["courses/courses.csv"]
    assert manifest["datasets"]["instructors"]["files"] == ["instructors/instructors.csv"]
    share = manifest["datasets"]["students"]["file_rows"]["students/students_extra.jsonl"]
    assert share == max(1, round(RATES["students_jsonl"] * manifest["datasets"]["students"]["expected"]["rows_in"]))


def test_values_look_real(tmp_path):
    root = tmp_path / "raw"
    generate_raw_layer(root, 2_000, seed=5)
    stu = rows(root, "students")
    for r in stu:
        area, group, serial = map(int, r["ssn"].split("-"))
        assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", r["ssn"])
        assert (1 <= area <= 665 or 667 <= area <= 899) and group != 0 and serial != 0
        assert re.fullmatch(r"\d{5}", r["postal_code"])
        assert 1 <= int(r["student_id"]) <= 250
        assert r["email"].strip().lower().split("@")[1] in names.EMAIL_DOMAINS_STUDENT
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", r["last_modified"])
        year = int(r["date_of_birth"][:4] if "-" in r["date_of_birth"] else r["date_of_birth"][-4:])
        assert 1985 <= year <= 2008
    phone_shapes = {re.sub(r"(?<!\+)\d", "d", r["phone"]) for r in stu}
    assert phone_shapes == {"ddd-ddd-dddd", "(ddd) ddd-dddd", "ddd.ddd.dddd", "+1 ddd ddd dddd", "dddddddddd"}
    crs = rows(root, "courses")
    assert all(1 <= int(r["credits"]) <= 5 and 101 <= int(r["course_id"]) < 121 for r in crs)
    enr = rows(root, "enrollments")
    grades = [(90, "A"), (80, "B"), (70, "C"), (60, "D"), (-1e9, "F")]
    for r in enr:
        assert r["enrollment_id"] is None or int(r["enrollment_id"]) >= 1_000_001
        assert re.fullmatch(r"(SPRING|SUMMER|FALL)20\d\d", r["term"].strip().upper())
        assert r["status"].strip().lower() in names.STATUSES
        assert r["payment_status"] in names.PAYMENT_STATUSES
        assert 1000 <= float(r["tuition_amount"]) <= 6000
        assert re.fullmatch(r"-?\d+(\.\d)?", r["marks"]) and re.fullmatch(r"-?\d+\.\d\d", r["attendance_percentage"])
        marks = float(r["marks"])
        if 0 <= marks <= 100:
            assert r["grade"].strip().upper() == next(g for lo, g in grades if marks >= lo)
    assert {r["status"].strip().lower() for r in enr} == set(names.STATUSES)


def test_vocabulary_survives_standardization_and_needs_no_csv_quoting():
    for value in names.FIRST_NAMES_MALE + names.FIRST_NAMES_FEMALE + names.LAST_NAMES + names.DEPARTMENTS:
        assert value == value.title(), value
    assert all(c[0] == c[0].title() for c in names.CITIES)
    texts = names.STUDENT_NOTES + names.ENROLLMENT_NOTES + [t for v in names.COURSE_TITLES.values() for t in v]
    texts += [p + s for p, _, s in names.PII_NOTES]
    assert not [t for t in texts if set(t) & set(',"\n\r')]
    assert not [t for t in names.STUDENT_NOTES + names.ENROLLMENT_NOTES if re.search(r"\d", t)]
    assert len(names.FIRST_NAMES_MALE + names.FIRST_NAMES_FEMALE) >= 300 and len(names.LAST_NAMES) >= 300
    assert set(names.COURSE_TITLES) == set(names.DEPARTMENTS) == set(names.SPECIALIZATIONS)


def test_chunks_respect_the_file_limits():
    assert writers.chunks(10, 250_000, 2) == [(0, 5), (5, 10)]
    parts = writers.chunks(500_001, 250_000, 2)
    assert len(parts) == 3 and max(b - a for a, b in parts) <= 250_000
    assert parts[0][0] == 0 and parts[-1][1] == 500_001
    assert writers.chunks(200_000, 200_000) == [(0, 200_000)]


def test_rerun_in_the_same_folder_leaves_no_stale_files(tmp_path):
    generate_raw_layer(tmp_path, 1_000, seed=1)
    manifest = generate_raw_layer(tmp_path, 100, seed=1)
    listed = {f for e in manifest["datasets"].values() for f in e["files"]} | {"_manifest.json"}
    assert {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()} == listed


def test_a_layer_above_the_part_size_is_made_in_parts_and_the_pipeline_finds_what_it_says(tmp_path, monkeypatch):
    """Memory is bounded by a part: each part has its own ids and defects, and the manifest adds them up."""
    from enrollment_platform.generator import layer as generator_layer
    from enrollment_platform.runner import run_pipeline
    from enrollment_platform_tests.conftest import local_settings

    assert generator_layer.part_sizes(400, 150) == [134, 133, 133]
    assert generator_layer.part_sizes(300, 150) == [150, 150]
    assert generator_layer.part_sizes(20, 150) == [20]
    monkeypatch.setattr(generator_layer, "ENROLLMENTS_PER_PART", 150)
    root = tmp_path / "raw"
    manifest = generate_raw_layer(root, 400, seed=7)
    entry = manifest["datasets"]["enrollments"]
    assert sorted(f for f in entry["files"] if f.endswith(".parquet")) == [
        f"enrollments/enrollments_late_part{i:03d}.parquet" for i in range(3)
    ]
    enrollments = rows(root, "enrollments")
    assert entry["expected"]["rows_in"] == sum(entry["file_rows"].values()) == len(enrollments)
    ids = {int(r["enrollment_id"]) for r in enrollments if r["enrollment_id"] is not None}
    assert min(ids) == 1_000_001 and max(ids) == 1_000_400  # one id range across the parts
    assert sum(entry["defects"]["date_formats"].values()) > 0
    summary = run_pipeline(local_settings(tmp_path / "home", root))
    assert summary.success, summary.failures
    for dataset, info in manifest["datasets"].items():
        got = {name: summary.datasets[dataset][name] for name in info["expected"]}
        assert got == info["expected"], dataset
