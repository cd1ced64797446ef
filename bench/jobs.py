"""What a task job pays to load the analysis, with and without the worker's warm-up.

    .venv/bin/python bench/jobs.py [--rounds 4] [--jobs 5]

RQ forks a process per job, so whatever the worker has not loaded before forking, every job loads
again. Each round starts two worker-like parents (Django set up, ``monitoring.tasks`` imported),
one as before (cold) and one that ran ``warm_up()`` as ``manage.py rqworker`` now does; each forks
JOBS children that run a job's analysis: one patient of 30 sessions with stored clinic values (the
per-submission call). The medians of the children's times and their ratio go to
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import ROOT, write_section


def parent(mode: str, jobs: int) -> None:
    """A worker-like process: set up, maybe warmed, forking jobs; prints the jobs' times."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitoring.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import monitoring.tasks  # noqa: F401  (what a worker imports for its jobs)
    from monitoring.analytics import AnalysisConfig, analyse
    from monitoring.analytics.analysis import warm_up
    from monitoring.analytics.clinic import known_case_clinic
    from monitoring.analytics.simulate import simulate_cohort

    scores = simulate_cohort(1, seed=7, sessions=(30, 30)).scores
    config = AnalysisConfig(clinic=known_case_clinic(pooled_within_sd=0.25, sd_ref=0.65))
    warm = 0.0
    if mode == "warm":
        started = time.perf_counter()
        warm_up()
        warm = time.perf_counter() - started
    times = []
    for _ in range(jobs):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the job
            started = time.perf_counter()
            analyse(scores, config)
            os.write(write, repr(time.perf_counter() - started).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        times.append(float(os.read(read, 64)))
        os.close(read)
        os.close(write)
    print(json.dumps({"mode": mode, "times": times, "warm": warm}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--parent", choices=["cold", "warm"])
    args = parser.parse_args()
    if args.parent:
        parent(args.parent, args.jobs)
        return 0
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    warm_costs = []
    for _ in range(args.rounds):
        for mode in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, __file__, "--parent", mode, "--jobs", str(args.jobs)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            times[mode] += result["times"]
            if mode == "warm":
                warm_costs.append(result["warm"])
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    section = f"""## A task job's analysis, with and without the worker's warm-up (`bench/jobs.py`)

Measured {time.strftime("%Y-%m-%d %H:%M")} on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}:
{args.rounds} rounds x {args.jobs} forked jobs per kind of worker; each job analyses one patient of
30 sessions with stored clinic values, in a child forked from a worker-like process (Django set
up, `monitoring.tasks` imported), as RQ runs every job.

| worker | job's analysis, median | range |
|---|---|---|
| cold (as before: nothing of the analysis loaded before forking) | {cold * 1000:.0f} ms | {min(times["cold"]) * 1000:.0f}-{max(times["cold"]) * 1000:.0f} ms |
| warmed (`warm_up()` before the first job, as `manage.py rqworker` and `db_worker` now do) | **{warm * 1000:.0f} ms** | {min(times["warm"]) * 1000:.0f}-{max(times["warm"]) * 1000:.0f} ms |
| ratio cold / warmed | **{cold / warm:.0f}x** | |

The warm-up itself costs the worker {statistics.median(warm_costs):.1f} s once, at its start (each
gunicorn worker does the same as it boots, in `monitoring/wsgi.py`). Before, every job imported
scipy's distributions, pandas' paths and (since the rules are compiled) loaded numba and the rules'
machine code again, because the forked child's copy is dropped when the job ends.
"""
    print(section)
    write_section("jobs", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
