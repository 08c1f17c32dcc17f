"""Refresh the README pictures: the asset graph as the Dagster UI shows it, and the DQ trend chart.

    .venv/bin/python scripts/readme_pictures.py [--out docs] [--batches 5] [--keep]

In a temporary folder: generates a raw layer of several batches (one ingestion date each, days apart, so each is a
run of its own), runs the pipeline, observes the warehouse metrics, copies the DQ trend PNG of the last run to
<out>/dq_trend.png, then starts `dagster dev` on that home (in a session of its own, so it can be stopped) and
takes a screenshot of the asset graph with headless Chromium (Debian package `chromium`): <out>/asset_graph.png.
The instance of that home has the UI's welcome dialog turned off. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enrollment_platform.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("students", "courses", "instructors", "enrollments")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
PAGES = {"asset_graph.png": ("/asset-groups", "1500,820")}  # picture -> (UI path, window size)
QUIET_INSTANCE = "nux:\n  enabled: false\ntelemetry:\n  enabled: false\n"  # no welcome dialog over the graph


def build_home(work: Path, batches: int, enrollments: int) -> Settings:
    """A raw layer of `batches` generated batches, each on its own ingestion date, and the pipeline run on it."""
    from enrollment_platform.generator import generate_raw_layer
    from enrollment_platform.runner import run_pipeline
    from enrollment_platform.settings import Settings

    (work / "home" / "dagster").mkdir(parents=True)
    (work / "home" / "dagster" / "dagster.yaml").write_text(QUIET_INSTANCE)
    raw = work / "raw"
    for i in range(batches):
        generated = work / f"generated-{i}"
        generate_raw_layer(generated, enrollments, seed=i + 1)
        day = date(2024, 9, 1) + timedelta(days=2 * i)
        for dataset in DATASETS:
            shutil.copytree(generated / dataset, raw / dataset / f"ingest_date={day}")
    settings = Settings.from_env(environ={}, home=str(work / "home"), raw_uri=str(raw))
    summary = run_pipeline(settings)
    if not summary.success:
        sys.exit(f"the pipeline failed: {summary.failures}")
    print(f"{len(summary.run_ids)} runs under {settings.home}")
    return settings


def observe_metrics(settings) -> None:
    """One observation of monitoring/warehouse_metrics, so the UI shows its metadata."""
    import dagster as dg

    from enrollment_platform.assets.monitoring import WAREHOUSE_METRICS, warehouse_metrics
    from enrollment_platform.definitions import resources_for
    from enrollment_platform.runner import dagster_instance

    job = dg.define_asset_job("observe_warehouse_metrics", selection=dg.AssetSelection.assets(WAREHOUSE_METRICS))
    defs = dg.Definitions(assets=[warehouse_metrics], jobs=[job], resources=resources_for(settings))
    defs.resolve_job_def(job.name).execute_in_process(instance=dagster_instance(settings))


def copy_trend(settings, out: Path) -> None:
    import dagster as dg

    from enrollment_platform.runner import dagster_instance

    record = dagster_instance(settings).fetch_materializations(dg.AssetKey(["warehouse", "dq_results"]), limit=1)
    path = record.records[0].asset_materialization.metadata["dq_trend_path"].value
    shutil.copy(path, out / "dq_trend.png")
    print(f"{out / 'dq_trend.png'} <- {path}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dagster(settings, port: int, log: Path) -> subprocess.Popen:
    """`dagster dev` on the home, in its own session (it ignores SIGTERM from a non-interactive shell otherwise)."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(settings.home / "dagster"),
        "ENROLLMENT_HOME": str(settings.home),
        "ENROLLMENT_RAW_URI": settings.raw_uri,
    }
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    with log.open("w") as output:
        return subprocess.Popen(
            command, cwd=settings.home, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for_ui(port: int, process: subprocess.Popen, seconds: float = 180) -> None:
    query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"dagster dev exited with {process.returncode}")
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                if json.load(response)["data"]["assetNodes"]:
                    return
        except Exception:  # not serving yet
            pass
        time.sleep(1)
    sys.exit("dagster dev did not serve the asset graph in time")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def screenshot(browser: str, url: str, size: str, target: Path, profile: Path) -> None:
    """Headless Chromium; the virtual time budget lets the single-page UI fetch and lay out the graph."""
    command = [
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={size}",
        "--virtual-time-budget=30000",
        f"--screenshot={target}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    print(f"{target} <- {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--enrollments", type=int, default=400)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    browser = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    if browser is None:
        sys.exit("no Chromium found: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="readme-pictures-"))
    try:
        settings = build_home(work, args.batches, args.enrollments)
        observe_metrics(settings)
        copy_trend(settings, args.out)
        port = free_port()
        process = start_dagster(settings, port, work / "dagster-dev.log")
        try:
            wait_for_ui(port, process)
            for name, (path, size) in PAGES.items():
                screenshot(browser, f"http://127.0.0.1:{port}{path}", size, args.out / name, work / "chromium")
        finally:
            stop(process)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
