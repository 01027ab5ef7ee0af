"""``gridlake bench profile``: where the time of one night goes, stage by stage, in a JSON report.

One generated night runs as ``gridlake run`` in its own process tree, as a user would run it, with two
observers that do not change what it computes:

* Spark's own event log (``spark.eventLog.*`` through ``GRIDLAKE_SPARK__EXTRA__...``): every Spark job with
  its submit and end time, the SQL execution it belongs to and the pipeline stage that submitted it (the
  ``gridlake.stage`` local property, :func:`gridlake.spark.label_jobs`; a job from a stage's worker thread
  carries no tag and is placed by time). Jobs are sorted into kinds (:func:`job_kind`): the Delta log
  (snapshot state and file listing), table writes and MERGEs, local checkpoints, quality validation
  (Great Expectations) and other actions (count, collect, toPandas).
* a sampler of the JVM's threads (``/proc/<pid>/task``): CPU seconds of the JIT compilers, the garbage
  collector, the task threads and the rest (the driver's planning, Delta commits), and of the Python driver.

Job-seconds add up the durations of jobs, which overlap when a stage runs units from two threads; they say
how much of a stage is Spark jobs at all, and of which kind, not a share of its wall time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gridlake.spark import STAGE_PROPERTY
from tools.bench.kit import gridlake_cmd, run_info

log = logging.getLogger(__name__)

#: job kinds, in the order :func:`job_kind` tries them
KINDS = ("delta_log", "write", "checkpoint", "quality", "action")
#: JVM thread names (``comm``, 15 characters) by the part of the work they do
THREAD_CLASSES = (("jit", ("C1 CompilerThre", "C2 CompilerThre", "Sweeper thread")),
                  ("gc", ("GC Thread", "G1 ", "VM Thread", "VM Periodic")),
                  ("tasks", ("Executor task",)))


def job_kind(call_site: str, description: str, sql_description: str) -> str:
    """The kind of one Spark job from its call site, its job description and its SQL execution's description."""
    text = f"{description} {sql_description}"
    if "great_expectations" in call_site:
        return "quality"
    if ("Filtering files for query" in text or "Compute snapshot" in text
            or "recordDeltaOperationInternal" in text or "withThreadLocalCaptured" in text):
        return "delta_log"
    if "MERGE operation" in text or text.lstrip().startswith("save at") or " save at " in text:
        return "write"
    if "localCheckpoint" in text or "localCheckpoint" in call_site:
        return "checkpoint"
    return "action"


def read_events(log_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event of the (uncompressed, possibly rolled) Spark event logs under ``log_dir``."""
    files = sorted(p for p in log_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and not p.name.startswith("appstatus"))
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def jobs_from_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{id, start, end, stage, kind, tasks}]`` (times in ms) of every finished job of the events."""
    sql: dict[int, str] = {}
    started: dict[int, dict[str, Any]] = {}
    jobs: list[dict[str, Any]] = []
    for e in events:
        kind = e.get("Event", "")
        if kind.endswith("SQLExecutionStart"):
            sql[int(e["executionId"])] = str(e.get("description") or "")
        elif kind == "SparkListenerJobStart":
            props = e.get("Properties") or {}
            sid = props.get("spark.sql.execution.id")
            started[e["Job ID"]] = {
                "id": e["Job ID"], "start": e["Submission Time"], "stage": props.get(STAGE_PROPERTY),
                "kind": job_kind(str(props.get("callSite.short") or ""), str(props.get("spark.job.description") or ""),
                                 sql.get(int(sid), "") if sid is not None else ""),
                "tasks": sum(int(s.get("Number of Tasks") or 0) for s in e.get("Stage Infos") or []),
            }
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in started:
            job = started.pop(e["Job ID"])
            job["end"] = e["Completion Time"]
            jobs.append(job)
    return jobs


def place_untagged(jobs: list[dict[str, Any]]) -> None:
    """Give a job without a stage tag the stage whose tagged jobs span its submit time (stages run one after
    another); one outside every span stays ``None`` (the session's own work before and after the stages)."""
    spans: dict[str, list[int]] = {}
    for j in jobs:
        if j["stage"]:
            lo, hi = spans.get(j["stage"], [j["start"], j["end"]])
            spans[j["stage"]] = [min(lo, j["start"]), max(hi, j["end"])]
    for j in jobs:
        if not j["stage"]:
            j["stage"] = next((s for s, (lo, hi) in spans.items() if lo <= j["start"] <= hi), None)


def summarise_jobs(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: jobs, tasks, job-seconds, and per kind the jobs and job-seconds."""
    out: dict[str, dict[str, Any]] = {}
    for j in jobs:
        st = out.setdefault(j["stage"] or "(outside stages)",
                            {"jobs": 0, "tasks": 0, "job_seconds": 0.0,
                             "by_kind": {k: {"jobs": 0, "job_seconds": 0.0} for k in KINDS}})
        secs = (j["end"] - j["start"]) / 1000
        st["jobs"] += 1
        st["tasks"] += j["tasks"]
        st["job_seconds"] += secs
        st["by_kind"][j["kind"]]["jobs"] += 1
        st["by_kind"][j["kind"]]["job_seconds"] += secs
    for st in out.values():
        st["job_seconds"] = round(st["job_seconds"], 1)
        for k in st["by_kind"].values():
            k["job_seconds"] = round(k["job_seconds"], 1)
    return out


def thread_class(name: str) -> str:
    """``jit``, ``gc``, ``tasks`` or ``driver_and_other`` for a JVM thread's name."""
    for cls, prefixes in THREAD_CLASSES:
        if name.startswith(prefixes):
            return cls
    return "driver_and_other"


class ThreadSampler:
    """CPU seconds per thread of every JVM under a process, and of the process itself, sampled until stopped
    (a thread's last reading counts: one that ended between samples loses at most an interval)."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.threads: dict[tuple[int, int], tuple[str, float]] = {}
        self.python_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                t = root.cpu_times()
                self.python_cpu = t.user + t.system
                for p in root.children(recursive=True):
                    if p.name() == "java":
                        self._sample_jvm(p.pid)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def _sample_jvm(self, pid: int) -> None:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1: stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            self.threads[(pid, int(task.name))] = (name, (int(fields[11]) + int(fields[12])) / self._tick)

    def jvm_cpu(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for name, secs in self.threads.values():
            out[thread_class(name)] += secs
        return {k: round(v, 1) for k, v in sorted(out.items())} | {"total": round(sum(out.values()), 1)}


def spark_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """The ``GRIDLAKE_SPARK__*`` settings of ``env``, a value whose name suggests a secret (an S3 key, a
    password, a token) replaced by ``<redacted>``: a report is published, a credential never is."""
    secret = re.compile(r"secret|password|token|credential|access[._]?key|\.key$", re.IGNORECASE)
    return {k: "<redacted>" if secret.search(k) else v for k, v in sorted(env.items())
            if k.startswith("GRIDLAKE_SPARK__")}


def profile_night(data: Path, night: dt.date, env: dict[str, str]) -> dict[str, Any]:
    """Run one night under the observers; return its wall time, stages, Spark jobs and CPU."""
    events = data / "spark-events"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    env = dict(env, **{"GRIDLAKE_SPARK__EXTRA__spark.eventLog.enabled": "true",
                       "GRIDLAKE_SPARK__EXTRA__spark.eventLog.dir": events.as_uri(),
                       "GRIDLAKE_SPARK__EXTRA__spark.eventLog.compress": "false"})
    started = time.monotonic()
    proc = subprocess.Popen(gridlake_cmd("run", "--date", night.isoformat(), "--data", str(data)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with ThreadSampler(proc.pid) as sampler:
        _, err = proc.communicate()
    wall = round(time.monotonic() - started, 2)
    if proc.returncode != 0:
        log.error("night %s failed (%s): %s", night, proc.returncode, (err or "")[-2000:])
    manifest = data / "lake" / "_runs" / f"manual__{night.isoformat()}.json"
    stages = json.loads(manifest.read_text(encoding="utf-8")).get("stages", {}) if manifest.exists() else {}
    jobs = jobs_from_events(read_events(events))
    place_untagged(jobs)
    spark = summarise_jobs(jobs)
    return {
        "seconds": wall, "returncode": proc.returncode,
        "stages": {name: {"seconds": st.get("seconds"), **spark.get(name, {})} for name, st in stages.items()},
        "outside_stages": spark.get("(outside stages)"),
        "spark_jobs": len(jobs),
        "cpu_seconds": {"python_driver": round(sampler.python_cpu, 1), "jvm": sampler.jvm_cpu()},
    }


def bench_profile(scale: str, root: Path, seed: int, nights: int = 1) -> dict[str, Any]:
    """Generate ``scale`` and profile its first ``nights`` nights (the second one is incremental)."""
    info = {**run_info(), "seed": seed, "scale": scale, "load_average_before": os.getloadavg(),
            # an experiment's Spark settings (GRIDLAKE_SPARK__EXTRA__<property>=...): the report says what it ran
            "spark_overrides": spark_overrides(os.environ)}
    data = root / scale
    shutil.rmtree(data, ignore_errors=True)
    env = dict(os.environ, GRIDLAKE_DATA=str(data))
    start = dt.date(2026, 11, 1)
    subprocess.run(gridlake_cmd("generate", "--scale", scale, "--days", str(nights), "--start", start.isoformat(),
                                "--seed", str(seed), "--data", str(data)), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    out = {}
    for i in range(nights):
        night = start + dt.timedelta(days=i)
        out[night.isoformat()] = profile_night(data, night, env)
        log.info("profiled %s: %.0f s, %d Spark jobs", night, out[night.isoformat()]["seconds"],
                 out[night.isoformat()]["spark_jobs"])
    return {"kind": "profile", **info, "python": sys.version.split()[0], "nights": out,
            "load_average_after": os.getloadavg()}
