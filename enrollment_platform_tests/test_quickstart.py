"""The README's first Quickstart command on a clean clone: install, run, a populated star schema."""

import shutil
import subprocess

import duckdb
import pytest

from enrollment_platform_tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_quickstart_on_a_clean_clone_populates_the_star_schema(tmp_path):
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: the clean-clone test needs git")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    done = subprocess.run(["./scripts/quickstart", "--json"], cwd=clone, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(clone / ".enrollment" / "warehouse.duckdb"), read_only=True) as con:
        for table in ("student_dim", "course_dim", "instructor_dim", "enrollment_fact"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
