"""`dagster dev` on this code location serves every asset of the graph (checked through GraphQL)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from enrollment_platform.definitions import build_assets_and_checks
from enrollment_platform_tests.conftest import REPO

pytestmark = pytest.mark.slow
QUERY = "{ assetNodes { assetKey { path } groupName } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_for_assets(port: int, process: subprocess.Popen, deadline: float) -> list[dict]:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited early with {process.returncode}")
        try:
            nodes = _graphql(port, QUERY)["data"]["assetNodes"]
            if nodes:
                return nodes
        except Exception as error:  # not up yet
            last_error = error
        time.sleep(1)
    raise AssertionError(f"dagster dev did not serve the asset graph in time: {last_error}")


def test_dagster_dev_serves_every_asset(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "ENROLLMENT_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster").mkdir()
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # dagster dev ignores SIGTERM from a non-interactive shell unless in its own session
    )
    try:
        nodes = _wait_for_assets(port, process, time.monotonic() + 120)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    served = {tuple(node["assetKey"]["path"]) for node in nodes}
    expected = {tuple(key.path) for asset in build_assets_and_checks()[0] for key in asset.keys}
    assert served == expected
    groups = {node["groupName"] for node in nodes}
    assert groups == {
        "raw",
        "standardized",
        "deduped",
        "validated",
        "redacted",
        "curated",
        "catalog",
        "warehouse",
        "monitoring",
    }
    assert process.returncode is not None
