"""The pipeline benchmark's harness (benchmarks/pipeline.py) measures what it says: wall seconds, and the CPU
seconds a child used, which a child that waits does not run up."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from enrollment_platform_tests.conftest import REPO


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pipeline_benchmark", REPO / "benchmarks" / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BUSY = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.4:\n    pass\nprint('busy')"
IDLE = "import time\ntime.sleep(0.4)\nprint('idle')"


def test_a_child_that_computes_runs_up_cpu_seconds_and_one_that_waits_does_not(harness, tmp_path):
    busy = harness.run_child([sys.executable, "-c", BUSY], tmp_path / "logs", "busy", tmp_path)
    idle = harness.run_child([sys.executable, "-c", IDLE], tmp_path / "logs", "idle", tmp_path)
    assert (busy.stdout.strip(), idle.stdout.strip()) == ("busy", "idle")
    assert busy.cpu_seconds >= 0.4 and busy.seconds >= 0.4
    assert idle.seconds >= 0.4 and idle.cpu_seconds < 0.3  # the interpreter's start, not the sleep
    assert busy.peak_rss_mib > 0


def test_a_failing_child_is_a_failed_trial(harness, tmp_path):
    with pytest.raises(harness.TrialFailed, match="exited 3"):
        harness.run_child([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "logs", "fails", tmp_path)


def test_the_size_summary_gives_wall_and_cpu_medians_and_ratios(harness):
    def trials(*pairs):
        return [harness.Trial(wall, 100.0, i, cpu_seconds=cpu) for i, (wall, cpu) in enumerate(pairs)]

    measured = {"pipeline": trials((90, 150), (110, 160), (80, 140)), "duckdb_baseline": trials((30, 50))}
    summary = harness.summarize_size(10, {"expected_rows_out": {}}, measured)
    assert summary["median_seconds"] == {"pipeline": 90, "duckdb_baseline": 30}
    assert summary["median_cpu_seconds"] == {"pipeline": 150, "duckdb_baseline": 50}
    assert summary["ratios"]["pipeline_over_duckdb_baseline"] == 3.0
    assert summary["cpu_ratios"]["pipeline_over_duckdb_baseline"] == 3.0
