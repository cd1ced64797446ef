"""Benchmark of the alliance analytics engine (issue 3); writes its section of docs/performance.md.

    .venv/bin/python bench/analytics.py            # full run (about a minute), updates the doc
    .venv/bin/python bench/analytics.py --quick    # small smoke run, prints only

Measures, in one process:

1. ``analyse`` on 1,000,000 patient-sessions (50,000 patients x 20 sessions, all five scales,
   all events, clinic values estimated from the same data): median of timed runs after one
   warm-up run, and peak memory (tracemalloc peak of the allocations made inside ``analyse``,
   and the peak-RSS increase of the process, in a separate run).
2. The straightforward per-patient implementation (groupby-apply of the same rules,
   monitoring.analytics.reference) on a random sample of patients; its time per patient times
   50,000 is the projected full-cohort time (groupby-apply work is linear in patients: each
   patient is an independent Python call), and the ratio to the vectorised median is reported,
   together with the ratio on the sample itself.
3. One patient with 40 sessions, with stored clinic values (the per-submission call).
4. How time grows from 10,000 to 1,000,000 sessions.

    .venv/bin/python bench/analytics.py --compare REV   # this tree against commit REV

compares ``analyse`` (and ``run_rules`` inside it) of this working tree with commit REV (checked
out in a temporary git worktree, removed afterwards) on the same 1M cohort: child processes of
the two trees alternate (ROUNDS rounds, two timed runs each after a warm-up), and the medians of
wall time and CPU time (``time.process_time``) are printed with their ratios. Prints only.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitoring.analytics import AnalysisConfig, analyse  # noqa: E402
from monitoring.analytics.reference import reference_analyse  # noqa: E402
from monitoring.analytics.simulate import simulate_cohort  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:analytics:start -->", "<!-- bench:analytics:end -->"
INTRO = """# Performance

Figures measured by the scripts in `bench/`, on the project's 2-core development machines. Each
bench writes its own section between its markers; rerun the script to refresh it.
"""
COLUMNS = ["patient", "session", "goal", "task", "bond", "total"]


def cohort(patients: int, sessions: int, seed: int) -> pd.DataFrame:
    scores = simulate_cohort(patients, seed=seed, sessions=(sessions, sessions)).scores[COLUMNS]
    return scores.copy()


CPU: list[tuple[float, float]] = []  # (user, system) seconds of the last timed() call's runs


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    CPU.clear()
    for _ in range(repeat):
        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        CPU.append((after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
        del result
    return times


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = float(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}


def tuned_probe(patients: int, sessions: int, repeat: int) -> int:
    """Child process: median seconds of ``analyse`` under TUNED_ENV (printed)."""
    scores = cohort(patients, sessions, seed=1)
    analyse(scores)
    print(statistics.median(timed(lambda: analyse(scores), repeat)))
    return 0


def tuned_median(patients: int, sessions: int, repeat: int) -> float:
    """Median of ``analyse`` in a child process whose allocator keeps freed memory mapped."""
    result = subprocess.run(
        [sys.executable, __file__, "--tuned-probe", "--repeat", str(repeat), "--patients", str(patients)],
        env={**os.environ, **TUNED_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def compare_child(root: str, cohort_path: str, repeat: int) -> int:
    """Child process: ``analyse`` of the tree at ``root`` on the pickled cohort; prints JSON."""
    import importlib
    import json

    sys.path.insert(0, root)
    for name in [m for m in sys.modules if m == "monitoring" or m.startswith("monitoring.")]:
        del sys.modules[name]
    analysis = importlib.import_module("monitoring.analytics.analysis")
    assert Path(analysis.__file__).resolve().is_relative_to(Path(root).resolve()), analysis.__file__
    scores = pd.read_pickle(cohort_path)  # noqa: S301 (written by the parent, in its private temp dir)
    acc = {"rules_wall": 0.0, "rules_cpu": 0.0}
    run_rules = analysis.run_rules

    def timed_rules(*args: object, **kwargs: object) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        out = run_rules(*args, **kwargs)
        acc["rules_wall"] += time.perf_counter() - wall
        acc["rules_cpu"] += time.process_time() - cpu
        return out

    analysis.run_rules = timed_rules
    analysis.analyse(scores)  # warm-up
    runs = []
    for _ in range(repeat):
        acc["rules_wall"] = acc["rules_cpu"] = 0.0
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = analysis.analyse(scores)
        runs.append({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, **acc})
        runs[-1]["events"] = len(result.events)
        del result
    print(json.dumps(runs))
    return 0


def compare(rev: str, rounds: int) -> int:
    """This tree against commit ``rev`` on the same 1M cohort, child processes alternating."""
    import json

    measures = ("wall", "cpu", "rules_wall", "rules_cpu")
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), rev], check=True)
        try:
            cohort_path = str(Path(tmp) / "cohort.pkl")
            cohort(50_000, 20, seed=1).to_pickle(cohort_path)
            trees = [(rev, str(other)), ("this tree", str(ROOT))]
            runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
            loads = [os.getloadavg()[0]]
            for i in range(rounds):
                for name, root in trees if i % 2 == 0 else trees[::-1]:
                    out = subprocess.run(
                        [sys.executable, __file__, "--compare-child", root, cohort_path],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    runs[name] += json.loads(out.stdout.strip().splitlines()[-1])
                loads.append(os.getloadavg()[0])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=True)
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in measures} for name, rs in runs.items()}
    print(
        f"{rounds} rounds x 2 runs per tree, 50,000 patients x 20 sessions; load average "
        + " ".join(f"{x:.2f}" for x in loads)
    )
    print("| tree | `analyse` wall | `analyse` CPU | `run_rules` wall | `run_rules` CPU | events |")
    print("|---|---|---|---|---|---|")
    for name, m in medians.items():
        events = runs[name][0]["events"]
        print(
            f"| {name} | {m['wall']:.2f} s | {m['cpu']:.2f} s | {m['rules_wall']:.3f} s | {m['rules_cpu']:.3f} s | {events:,} |"
        )
    base, new = medians[rev], medians["this tree"]
    print(
        "| ratio this tree / "
        + rev
        + " | "
        + " | ".join(f"{new[k] / base[k]:.2f}" for k in measures)
        + " | |"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small smoke run; prints, does not write the doc"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of the full cohort")
    parser.add_argument("--patients", type=int, default=50_000, help=argparse.SUPPRESS)
    parser.add_argument("--tuned-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compare", metavar="REV", help="compare this tree with commit REV; prints only")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --compare (default 5)")
    parser.add_argument("--compare-child", nargs=2, metavar=("ROOT", "COHORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare_child:
        return compare_child(*args.compare_child, repeat=2)
    if args.compare:
        return compare(args.compare, args.rounds)
    if args.tuned_probe:
        return tuned_probe(args.patients, 20, args.repeat)
    quick = args.quick
    full_patients = 5_000 if quick else 50_000
    sessions = 20
    sample_patients = 200 if quick else 1_000
    repeat = 3 if quick else args.repeat
    load_before = os.getloadavg()

    # 1. The full cohort.
    scores = cohort(full_patients, sessions, seed=1)
    n_rows = len(scores)
    gc.collect()
    cold = timed(lambda: analyse(scores), 1)[0]
    runs = timed(lambda: analyse(scores), repeat)
    median = statistics.median(runs)
    user = statistics.median(u for u, _ in CPU)
    cpu = statistics.median(u + sy for u, sy in CPU)  # = time.process_time of the run
    system = [sy for _, sy in CPU]
    probe = analyse(scores)
    n_events = len(probe.events)
    n_session_rows = len(probe.sessions)
    clinic = probe.clinic
    del probe
    gc.collect()
    rss_before, _ = rss_mb()
    exact_peak = reset_peak_rss()
    result = analyse(scores)
    _, rss_peak = rss_mb()
    del result
    gc.collect()
    tracemalloc.start()
    result = analyse(scores)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    gc.collect()

    tuned = tuned_median(full_patients, sessions, repeat)

    # 2. Per-patient groupby-apply on a sample, and the engine on the same sample.
    rng = np.random.default_rng(0)
    ids = pd.unique(scores["patient"])
    chosen = set(rng.choice(ids, size=sample_patients, replace=False).tolist())
    sample = scores[scores["patient"].isin(chosen)].reset_index(drop=True)
    config = AnalysisConfig(clinic=clinic)
    ref_time = min(timed(lambda: reference_analyse(sample, clinic=clinic, config=config), 2 if quick else 3))
    eng_sample = statistics.median(timed(lambda: analyse(sample, config), 5))
    per_patient = ref_time / sample_patients
    projected = per_patient * full_patients
    ratio = projected / median

    # 3. One patient, 40 sessions, stored clinic values.
    one = cohort(1, 40, seed=3)
    for _ in range(20):
        analyse(one, config)
    single = timed(lambda: analyse(one, config), 100 if quick else 300)
    single_ms = 1000 * statistics.median(single)
    single_p95 = 1000 * float(np.percentile(single, 95))

    # 4. Growth from 10k to 1M sessions.
    sizes = [500, 1_500, 5_000] if quick else [500, 1_500, 5_000, 15_000, 50_000]
    growth = []
    for patients in sizes:
        data = scores if patients == full_patients else cohort(patients, sessions, seed=2)
        analyse(data)
        t = statistics.median(timed(lambda data=data: analyse(data), 3 if patients >= 15_000 else 5))
        growth.append((patients * sessions, t))
        del data
    xs = np.log([g[0] for g in growth])
    ys = np.log([g[1] for g in growth])
    exponent = float(np.polyfit(xs[-3:], ys[-3:], 1)[0])
    load_after = os.getloadavg()

    lines = [
        START,
        "## Analytics engine (`bench/analytics.py`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}; load average "
        f"{load_before[0]:.2f} before and {load_after[0]:.2f} after (other work shares the machine)."
        + (" QUICK smoke run, not the real figures." if quick else ""),
        "",
        f"Cohort: {full_patients:,} simulated patients x {sessions} sessions = {n_rows:,} patient-sessions, "
        f"all five scales ({n_session_rows:,} session rows), {n_events:,} events, clinic values "
        "estimated from the same data (`analyse(scores)`).",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| `analyse`, median of {repeat} runs after a warm-up | **{median:.2f} s** "
        f"(min {min(runs):.2f}, max {max(runs):.2f}; first, cold run {cold:.2f} s) | <= 1 s |",
        f"| CPU time of the process (`time.process_time`, median; user + kernel) | **{cpu:.2f} s** | |",
        f"| of which CPU time in user space (median) / in the kernel (range) | {user:.2f} s / "
        f"{min(system):.2f}-{max(system):.2f} s | |",
        f"| same, allocator keeping freed memory mapped (`MALLOC_MMAP_MAX_=0`, "
        f"`MALLOC_TRIM_THRESHOLD_=4G`; median of {repeat} in a child process) | {tuned:.2f} s | |",
        f"| peak memory inside `analyse` (tracemalloc) | **{traced_peak / 2**20:,.0f} MB** | <= 2 GB |",
        f"| peak RSS increase of the process during `analyse` | {rss_peak - rss_before:,.0f} MB"
        + ("" if exact_peak else " (VmHWM could not be reset: upper bound)")
        + " | <= 2 GB |",
        f"| per-patient groupby-apply (`reference.py`) on {sample_patients:,} random patients | "
        f"{ref_time:.2f} s = {1000 * per_patient:.2f} ms per patient | |",
        f"| same, projected to {full_patients:,} patients (ms per patient x {full_patients:,}) | "
        f"{projected:.0f} s | |",
        f"| **speed-up of the engine** (projected groupby-apply / median above) | **{ratio:.0f}x** | >= 20x |",
        f"| speed-up on the sample itself ({sample_patients:,} patients, engine {eng_sample * 1000:.0f} ms) | "
        f"{ref_time / eng_sample:.0f}x | |",
        f"| one patient, 40 sessions, stored clinic values (median of {len(single)}) | **{single_ms:.1f} ms** "
        f"(95th percentile {single_p95:.1f} ms) | <= 10 ms |",
        "",
        "Growth with cohort size (20 sessions per patient; median of 3-5 runs after a warm-up):",
        "",
        "| patient-sessions | seconds | microseconds per session |",
        "|---|---|---|",
        *[f"| {n:,} | {t:.3f} | {1e6 * t / n:.2f} |" for n, t in growth],
        "",
        f"Fitted exponent of time on size over the three largest cohorts: {exponent:.2f} "
        "(1 = linear). Below about 100,000 sessions fixed per-call costs (pandas frame construction, "
        "the clinic estimate's fits) dominate, so time per session falls as cohorts grow.",
        "",
        "How the ratio is computed: the reference implementation is a pandas groupby-apply that "
        "runs the same rules patient by patient in plain Python (it is also the oracle of the "
        "property tests, which check that both give identical events). Its time on the sample, "
        "divided by the number of sampled patients, times the full number of patients, is compared "
        "with the engine's median on the full cohort.",
        "",
        "Variability: wall time depends on the load from other processes on these shared 2-core "
        "machines (the load average above; compare the CPU time, which load inflates far less). "
        "Part of every run is the kernel mapping and zeroing fresh memory for the arrays a run "
        "allocates (the result frames alone are about 390 MB; the kernel-time range above). A "
        "long-running worker can keep freed memory mapped with the two glibc settings in the table "
        "at the price of holding the memory of its largest analysis; the headline figure uses the "
        "defaults.",
        "",
        "Where the time goes (issue 18; cProfile and statement timing of one 1M run): before, "
        "building `analysis.sessions` took about a third (gathering the rules' step-major outputs "
        "into fresh columns, and `DataFrame.insert` copying five full-length columns), the events "
        "frame a quarter (sentences, and one Python string per row for the `str` columns), the "
        "rules a sixth, the clinic estimate an eighth (successive differences computed twice per "
        "scale, and their trimmed SD, a partition of a million values, twice), and the layout a "
        "tenth. Now the float columns of `analysis.sessions` are allocated once and serve as "
        "scratch space until their own values arrive (the layout writes scores and sessions there "
        "in output order; `unit_statistics` uses the rows of level and state as scratch space; "
        "the rules write their own rows), the frames are built with `copy=False`, the `str` columns are taken "
        "from their few distinct strings by index (pyarrow), the differences and their robust SD "
        "are computed once per scale, and filters of the events frame copy only the columns they "
        "use. Nothing changed in what is computed: float64 throughout (scores such as a total of "
        "4.333... are not exact in float32), and `tests/analytics/test_frozen.py` checks that the "
        "frames equal those of the engine before (flags, labels and sentences identical, numbers "
        "within 1e-9) on a 200-patient cohort, with clinic values estimated and given. Before/after "
        "in one run: `bench/analytics.py --compare REV` (below the table).",
        "",
        "Later in issue 18 the rules moved into compiled code (numba): one (patient, scale) series "
        "at a time, one session at a time, writing each output straight into its row of "
        "`analysis.sessions` (no step-major layout, no gathers), and each decline's window and "
        "rupture found as the sessions go (no walk back afterwards). The rules, the layout and the "
        "gathers had taken about 0.45 s of a 1M run; the kernel takes about 0.17 s. Compiling it "
        "takes about 6 s once per machine and code version (numba caches the machine code; "
        "`NUMBA_CACHE_DIR` where the code directory is read-only); later processes load it in "
        "about 0.3 s with the import. The same frozen outputs and the reference's events are the "
        "tests of the change.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if quick or args.no_write:
        return 0
    text = DOC.read_text() if DOC.exists() else INTRO
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"\nwrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
