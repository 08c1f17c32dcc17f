"""Bad raw files get a clear reason or a quarantine entry, and never stop the other files."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from enrollment_platform.config import load_catalog
from enrollment_platform.transforms.read_raw import _sniffed_dialect, stage_raw_file
from enrollment_platform.transforms.sql import quote_literal

ENROLLMENT_HEADER = "e_id,s_id,c_id,instructor_id,enrollment_date,marks_scored,attendance_percentage\n"


def stage(tmp_path: Path, name: str, content: bytes, dataset: str = "enrollments"):
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / f"{name}.staged.parquet"
    report = stage_raw_file(duckdb.connect(), source, name, load_catalog().datasets[dataset], out)
    con = duckdb.connect()
    rows = con.execute(f"SELECT * FROM read_parquet('{out}') ORDER BY _source_row").fetchall()
    columns = [d[0] for d in con.description]
    return report, [dict(zip(columns, row, strict=True)) for row in rows]


def test_original_aliases_map_to_canonical_names(tmp_path):
    report, rows = stage(tmp_path, "e.csv", (ENROLLMENT_HEADER + "1001,3,105,209,9/15/2023,88,92.35\n").encode())
    assert report.status == "ok"
    assert rows[0]["enrollment_id"] == "1001" and rows[0]["marks"] == "88" and rows[0]["student_id"] == "3"
    assert rows[0]["_source_file"] == "e.csv" and rows[0]["_source_row"] == 1


def test_empty_file_is_a_warning_with_no_rows(tmp_path):
    report, rows = stage(tmp_path, "empty.csv", b"")
    assert report.status == "warning" and "empty file" in report.messages[0]
    assert rows == []


def test_header_only_file_has_no_rows(tmp_path):
    report, rows = stage(tmp_path, "header.csv", ENROLLMENT_HEADER.encode())
    assert report.status == "ok" and rows == []


def test_missing_required_column_quarantines_every_row_with_the_reason(tmp_path):
    report, rows = stage(tmp_path, "nostudent.csv", b"e_id,c_id,enrollment_date\n1,101,2024-01-01\n2,102,2024-01-02\n")
    assert report.status == "warning"
    assert len(rows) == 2
    for row in rows:
        assert row["_load_errors"] == [
            "file has no required column 'student_id' (looked for: student_id, s_id, studentid)"
        ]


def test_non_utf8_file_is_read_as_latin1_with_a_warning(tmp_path):
    content = "student_id,fname,lname\n1,Zoë,Müller\n".encode("latin-1")
    report, rows = stage(tmp_path, "latin.csv", content, dataset="students")
    assert report.encoding == "latin-1" and report.status == "warning"
    assert rows[0]["first_name"] == "Zoë" and rows[0]["last_name"] == "Müller"


def test_binary_file_with_csv_name_is_rejected_as_a_whole(tmp_path):
    report, rows = stage(tmp_path, "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert report.status == "rejected"
    assert "binary" in report.messages[0]
    assert rows == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "bad.csv",
            ENROLLMENT_HEADER + "1,2,101,201,2024-01-01,50,90\n3,4,5,6,7,8,9,10,11\n",
            "malformed CSV line 3",
        ),
        (
            "bad.jsonl",
            '{"e_id": "1", "s_id": "2", "c_id": "101"}\n{"e_id": "2", oops\n',
            "malformed JSON line 2",
        ),
    ],
)
def test_malformed_lines_are_kept_with_their_text_and_reason(tmp_path, name, content, reason):
    report, rows = stage(tmp_path, name, content.encode())
    assert report.rejected_lines == 1
    bad = [r for r in rows if r["_raw_line"] is not None]
    assert len(bad) == 1 and bad[0]["_load_errors"][0].startswith(reason)
    good = [r for r in rows if r["_raw_line"] is None]
    assert len(good) == 1 and good[0]["enrollment_id"] == "1"


def test_json_numbers_and_parquet_values_become_text(tmp_path):
    report, rows = stage(tmp_path, "n.json", b'{"e_id": 1001, "s_id": 3, "c_id": 105, "marks_scored": 88.5}\n')
    assert rows[0]["enrollment_id"] == "1001" and rows[0]["marks"] == "88.5"
    con = duckdb.connect()
    parquet = tmp_path / "p.parquet"
    con.execute(f"COPY (SELECT 7 AS e_id, 3 AS s_id, 101 AS c_id, 99.5 AS marks) TO '{parquet}' (FORMAT parquet)")
    report = stage_raw_file(con, parquet, "p.parquet", load_catalog().datasets["enrollments"], tmp_path / "o.parquet")
    assert report.rows == 1 and report.status == "ok"


# whole characters, and lone lead and continuation bytes that only make a character when nothing comes between
_TEXT_PIECES = st.sampled_from([b"a", b"ascii, ", b"\n", "é".encode(), "€".encode(), "😀".encode(), b"\xc3", b"\xa9"])


@settings(max_examples=300, deadline=None)
@example(pieces=[b"\xc3", b"a", b"\xa9"], head=1, chunk=1)  # an ASCII chunk between a lead byte and its tail
@given(pieces=st.lists(_TEXT_PIECES, max_size=40), head=st.integers(1, 8), chunk=st.integers(1, 8))
def test_the_utf8_check_equals_decoding_the_whole_file(pieces, head, chunk, tmp_path_factory):
    """Skipping plain ASCII chunks changes no verdict, whatever the chunk borders split (multi-byte sequences
    across chunks included): UTF-8 exactly when the whole content decodes."""
    from enrollment_platform.transforms import read_raw

    content = b"".join(pieces)
    path = tmp_path_factory.mktemp("utf8") / "file.csv"
    path.write_bytes(content)
    try:
        content.decode("utf-8")
        expected = "utf-8"
    except UnicodeDecodeError:
        expected = "latin-1"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(read_raw, "_SNIFF_BYTES", head)
        patch.setattr(read_raw, "_CHUNK_BYTES", chunk)
        assert read_raw.sniff_encoding(path) == expected


_JSON_KEY = st.sampled_from(["e_id", "s_id", "marks", "note", "a/b", "c~d", "é"])
_JSON_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2028\u2029\x85"), max_size=8),
)
_JSON_LINE = st.one_of(
    st.dictionaries(_JSON_KEY, _JSON_VALUE, max_size=4).map(json.dumps),
    st.sampled_from(["", "   ", "\t", "[1, 2]", '"text"', "3", "{not json", '{"e_id": 1', "oops"]),
    st.sampled_from(['{"marks": 2.50}', '{"marks": 1e2, "e_id": 7}', '{"marks": -0.0}', '{"marks": 1E400}']),
)


def _python_json_lines(lines: list[str]) -> tuple[list[tuple[int, dict]], list[tuple[int, str]]]:
    """What the JSON-lines reader must give: the objects by line number, and each rejected line's number and
    reason prefix (values as text: strings as they are, booleans true/false, numbers like Python prints them)."""

    def text(value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(value) if isinstance(value, float) else str(value)

    objects, rejected = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            rejected.append((number, "malformed JSON line"))
            continue
        if isinstance(value, dict):
            objects.append((number, {k: text(v) for k, v in value.items()}))
        else:
            rejected.append((number, "JSON line"))
    return objects, rejected


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_JSON_LINE, max_size=12), crlf=st.booleans())
def test_json_lines_read_by_duckdb_equal_reading_them_in_python(lines, crlf, tmp_path_factory):
    """Objects, their values as text (unicode, huge integers, fractions, null, booleans, keys needing escapes),
    blank lines skipped, and lines that are not JSON or not objects rejected with their numbers; CRLF too."""
    from enrollment_platform.transforms.read_raw import FileReport, _json_source

    path = tmp_path_factory.mktemp("jsonl") / "rows.jsonl"
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode())
    con = duckdb.connect()
    report = FileReport(path="rows.jsonl", format="json", size_bytes=path.stat().st_size)
    _json_source(con, path, report)
    columns = [row[0] for row in con.execute("DESCRIBE _parsed").fetchall()]
    got = [
        (row[-1], {k: v for k, v in zip(columns[:-1], row[:-1], strict=True) if v is not None})
        for row in con.execute("SELECT * FROM _parsed ORDER BY _source_row").fetchall()
    ]
    expected, rejected = _python_json_lines(lines)
    assert got == [(n, {k: v for k, v in obj.items() if v is not None}) for n, obj in expected]
    keys = list(dict.fromkeys(k for _, obj in expected for k in obj))
    assert columns == [*keys, "_source_row"]
    found = con.execute("SELECT line, reason FROM _rejected ORDER BY line").fetchall()
    assert [(n, reason.startswith(prefix)) for (n, reason), (_, prefix) in zip(found, rejected, strict=True)] == [
        (n, True) for n, _ in rejected
    ]
    assert report.rejected_lines == len(rejected)


def test_a_latin1_json_lines_file_is_read_through_a_utf8_copy(tmp_path):
    content = '{"student_id": "1", "fname": "Zoë", "lname": "Müller"}\n'.encode("latin-1")
    report, rows = stage(tmp_path, "latin.jsonl", content, dataset="students")
    assert report.encoding == "latin-1" and report.status == "warning"
    assert (rows[0]["first_name"], rows[0]["last_name"]) == ("Zoë", "Müller")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin.jsonl", "latin.jsonl.staged.parquet"]


def _read_both_ways(path: Path, encoding: str = "utf-8") -> tuple[tuple, tuple]:
    """Rows and rejected lines of the file read with DuckDB's own detection, and with the sniffed dialect."""
    literal = quote_literal(str(path))
    options = f"all_varchar=true, header=true, store_rejects=true, encoding={quote_literal(encoding)}"
    results = []
    for sniff_first in (False, True):
        con = duckdb.connect()
        try:
            dialect = _sniffed_dialect(con, literal, options) if sniff_first else ""
            relation = con.execute(f"SELECT * FROM read_csv({literal}, {options}{dialect}) WITH ORDINALITY")
            columns, rows = tuple(d[0] for d in relation.description), relation.fetchall()
            rejected = con.execute("SELECT line, error_type, csv_line FROM reject_errors ORDER BY ALL").fetchall()
            results.append((columns, sorted(rows, key=lambda r: r[-1]), rejected))
        except duckdb.Error as error:  # both ways must fail alike, e.g. a file with no readable dialect
            results.append((type(error).__name__,))
    return results[0], results[1]


TRICKY_CSV = {
    "semicolons": "a;b;c\n1;x,y;3\n4;5;6\n",
    "tabs and quotes": 'a\tb\n"1\t2"\t3\n4\t"5 ""q"""\n',
    "quoted newline, CRLF": 'a,b\r\n"line1\r\nline2",2\r\n3,4\r\n',
    "ragged": "a,b,c\n1,2,3\n4,5,6,7\n8,9\n",
    "duplicate headers": "a,a,b\n1,2,3\n",
    "pipes, header only": "a|b|c\n",
    "one column": "id\n1\n2\n",
    "quotes after the sample": "a,b\n" + "1,2\n" * 30_000 + '"3,x",4\n',
}


@pytest.mark.parametrize("name", sorted(TRICKY_CSV))
def test_the_sniffed_dialect_reads_a_file_as_duckdb_s_own_detection_does(tmp_path, name):
    path = tmp_path / "f.csv"
    path.write_text(TRICKY_CSV[name], newline="")
    auto, sniffed = _read_both_ways(path)
    assert sniffed == auto


CELLS = st.text(alphabet=st.sampled_from('ab1 ,;|"\t\n\r'), max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    header=st.lists(st.sampled_from(["e_id", "s_id", "x y", "c_id"]), min_size=1, max_size=4),
    cells=st.lists(st.lists(CELLS, min_size=1, max_size=5), max_size=6),
)
@example(header=["e_id", "e_id"], cells=[['"', '"']])  # sniff_csv refuses its header, read_csv reads it: no dialect
def test_the_sniffed_dialect_matches_on_generated_files(tmp_path_factory, header, cells):
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_text("\n".join([",".join(header), *(",".join(row) for row in cells)]) + "\n", newline="")
    auto, sniffed = _read_both_ways(path)
    assert sniffed == auto


def test_a_latin1_file_reads_alike_both_ways(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes('student_id;fname\n1;Zoë\n2;"Müller; Jr"\n'.encode("latin-1"))
    auto, sniffed = _read_both_ways(path, "latin-1")
    assert sniffed == auto and len(auto[1]) == 2


@pytest.mark.parametrize("threads", [1, 2])
def test_row_numbers_follow_the_file_across_reader_buffers(tmp_path, threads):
    """`_source_row` is the row's place in the file even when DuckDB reads the file in parallel pieces: a file
    of ~20 MB, bigger than one read piece, whose rows carry their own number."""
    rows = 600_000
    lines = (f"E{n},S{n},C{n % 97},I{n % 13},2024-01-01,{n % 101},50,{'x' * 8}\n" for n in range(1, rows + 1))
    source = tmp_path / "big.csv"
    source.write_text(ENROLLMENT_HEADER.replace("\n", ",notes\n") + "".join(lines))
    out = tmp_path / "big.parquet"
    con = duckdb.connect(config={"threads": threads, "preserve_insertion_order": False})
    report = stage_raw_file(con, source, "big.csv", load_catalog().datasets["enrollments"], out)
    assert report.status == "ok" and report.rows == rows
    misplaced = (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_parquet('{out}') WHERE enrollment_id <> 'E' || _source_row")
        .fetchone()[0]
    )
    assert misplaced == 0
