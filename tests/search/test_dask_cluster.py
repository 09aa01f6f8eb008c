"""`--scheduler ADDRESS` against a real Dask cluster: a `dask scheduler` process and a `dask worker` process
with two worker processes, on loopback, started the way a user starts them on a cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dask.distributed")

DASK = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    if DASK is None:
        pytest.skip("dask command-line tool not found")
    info = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            if time.monotonic() > deadline:
                pytest.fail("dask scheduler did not start within 60 s")
            time.sleep(0.2)
        time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([DASK, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env))
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow  # starts three Python processes with the full stack; run by `make bench`
def test_sweep_on_a_separate_dask_cluster(cluster: str, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "accelflow", "sweep", "zoo:lenet5", "--arch", "systolic",
           "--param", "rows=4,8", "--param", "cols=4,8", "--storage", str(tmp_path / "s.db"),
           "--scheduler", cluster, "--out", str(tmp_path / "out"), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["designs"] == 4 and not doc["failed"]
    # the same grid evaluated in this process gives the same cycles
    local = subprocess.run(cmd[:cmd.index("--scheduler")] + ["--storage", str(tmp_path / "local.db"), "--json"],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    cycles = lambda d: {json.dumps(p["params"], sort_keys=True): p["cycles"] for p in d["points"]}  # noqa: E731
    assert cycles(doc) == cycles(json.loads(local.stdout))
    # the designs were evaluated by the cluster: its scheduler knows the sweep's tasks (finished tasks are
    # forgotten, their prefix and compute time stay)
    from dask.distributed import Client

    with Client(cluster, timeout=60) as client:
        seconds = client.run_on_scheduler(lambda dask_scheduler: {
            k: v.all_durations.get("compute", 0.0) for k, v in dask_scheduler.task_prefixes.items()})
    assert any(k.startswith("ArchSweep") and v > 0 for k, v in seconds.items()), seconds
