"""Helpers shared by the benchmark scripts: machine description, percentiles, result files."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def scratch_dir(prefix: str) -> Path:
    """A temporary folder for a benchmark's databases, removed when the script ends — also when it fails, is
    interrupted or gets SIGTERM: runs killed part-way used to leave hundreds of MB each in /tmp, and a full disk
    then failed an unrelated test run."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    main_pid = os.getpid()

    def remove() -> None:
        if os.getpid() == main_pid:  # not in a forked worker that happens to run atexit handlers
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return folder


def speed_ms() -> float:
    """Median milliseconds of a fixed pure-Python workload now: this shared VM's speed swings by up to twice
    between hours (the same commit filed 600/s and 1,290/s through the API), so results carry the speed they
    were measured at, and only runs of similar speed compare."""
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        table: dict[int, int] = {}
        for i in range(200_000):
            table[i % 1024] = table.get(i % 1024, 0) + i * i
        times.append((time.perf_counter() - t0) * 1000)
    return round(sorted(times)[len(times) // 2], 1)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "speed_ms": speed_ms(),
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def save(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, default=str))
