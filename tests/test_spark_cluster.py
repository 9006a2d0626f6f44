"""Parity on a Spark standalone cluster started here: a master and two workers from the
pyspark installation, executors in their own JVMs, shared local paths. Serialisation,
file listing and (reliable) checkpointing then run as on a real cluster, which local[2]
(one JVM) does not exercise. Small generated data keeps it quick."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli
from tests.test_spark_parity import AS_OF, MISSING, _parity

pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
            return int(json.load(r).get("aliveworkers", 0))
    except (OSError, ValueError):  # not up yet; a master still starting answers its HTML page
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:PORT with two one-core workers; stopped at the end."""
    tmp = tmp_path_factory.mktemp("cluster")
    port, ui = _free_port(), _free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOG_DIR": str(tmp), "SPARK_WORKER_DIR": str(tmp / "work")}
    master_url = f"spark://127.0.0.1:{port}"
    logs = [open(tmp / f"{name}.log", "w") for name in ("master", "worker1", "worker2")]  # noqa: SIM115
    procs = [subprocess.Popen(
        [str(_spark_class()), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(ui)], env=env, stdout=logs[0],
        stderr=subprocess.STDOUT)]
    procs += [subprocess.Popen(
        [str(_spark_class()), "org.apache.spark.deploy.worker.Worker", master_url,
         "--cores", "1", "--memory", "1g", "--webui-port", "0",
         "--work-dir", str(tmp / f"work{i}")], env=env, stdout=logs[i],
        stderr=subprocess.STDOUT) for i in (1, 2)]
    try:
        deadline = time.monotonic() + 120
        while _alive_workers(ui) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                pytest.fail("the standalone cluster did not start: "
                            + (tmp / "master.log").read_text()[-2000:])
            time.sleep(1)
        yield master_url
    finally:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()  # the next tests start their own local[2]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def test_standalone_cluster_gives_the_duckdb_result(cluster, tmp_path):
    subprocess.run([sys.executable, str(REPO / "sample_data" / "generate.py"), "--out",
                    str(tmp_path), "--persons", "300", "--seed", "5"], check=True,
                   capture_output=True)
    duck, spark = Cli(tmp_path / "duck.duckdb"), Cli(tmp_path / "spark.duckdb")
    assert duck("run", "--inbox", tmp_path / "inbox", "--as-of", AS_OF).exit_code == 0
    ran = spark("run", "--engine", "spark", "--spark-master", cluster,
                "--checkpoint-dir", tmp_path / "checkpoints", "--inbox", tmp_path / "inbox",
                "--output", tmp_path / "out", "--as-of", AS_OF, "--json")
    assert ran.exit_code == 0, ran.stderr[-3000:]
    assert ran.json()["master"] == cluster  # not a leftover local session
    assert spark("load-results", tmp_path / "out").exit_code == 0
    report = _parity(duck, spark)
    assert {t: r for t, r in report.items() if r["only_duckdb"] or r["only_spark"]} == {}
    assert {t: r["rows"] for t, r in report.items()} == {
        "person_leads": 643, "tags": 7084, "scores": 307, "ownership": 307, "assignments": 307}
