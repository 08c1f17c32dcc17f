"""Which raw files still need processing: new files are found without reading them; a known file is read (hashed)
only when its size or time changed, and is pending only when its bytes did."""

from pathlib import Path

import pytest

from enrollment_platform import bookmarks
from enrollment_platform.bookmarks import file_identity, is_pending, pending_dates
from enrollment_platform.resources.raw import RawFile


def raw_file(path: Path, relative: str) -> RawFile:
    stat = path.stat()
    return RawFile("students", path, relative, stat.st_size, stat.st_mtime_ns)


def ledger_of(*files: RawFile) -> dict:
    return {
        (f.dataset, f.relative): {
            "size_bytes": f.size_bytes,
            "modified_ns": f.modified_ns,
            "identity": file_identity(f),
        }
        for f in files
    }


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The files whose bytes were read to hash them."""
    seen: list[str] = []
    original = bookmarks.file_identity
    monkeypatch.setattr(bookmarks, "file_identity", lambda f: seen.append(f.relative) or original(f))
    return seen


def test_new_files_are_pending_without_being_read(tmp_path, hashed):
    day = tmp_path / "students" / "ingest_date=2024-09-05"
    day.mkdir(parents=True)
    (day / "s.csv").write_text("student_id\n1\n")
    new = raw_file(day / "s.csv", "students/ingest_date=2024-09-05/s.csv")
    assert is_pending(new, {}) and pending_dates([new], {}) == ["2024-09-05"]
    assert hashed == []


def test_a_known_file_is_read_only_when_its_size_or_time_changed_and_pending_only_when_its_bytes_did(tmp_path, hashed):
    path = tmp_path / "s.csv"
    path.write_text("student_id\n1\n")
    known = raw_file(path, "students/s.csv")
    ledger = ledger_of(known)
    hashed.clear()
    assert not is_pending(known, ledger) and hashed == []
    touched = RawFile("students", path, "students/s.csv", known.size_bytes, known.modified_ns + 1)
    assert not is_pending(touched, ledger) and hashed == ["students/s.csv"]  # same bytes, a new time
    path.write_text("student_id\n2\n")
    assert is_pending(raw_file(path, "students/s.csv"), ledger)
