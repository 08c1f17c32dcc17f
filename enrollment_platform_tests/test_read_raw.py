"""Bad raw files get a clear reason or a quarantine entry, and never stop the other files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from enrollment_platform.config import load_catalog
from enrollment_platform.transforms.read_raw import stage_raw_file

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
