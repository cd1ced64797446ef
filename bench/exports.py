"""Exports on PostgreSQL: the streamed item-level CSV of a million answers, and the other formats.

    .venv/bin/python bench/exports.py [--patients 2000] [--sessions 42] [--quick]

Seeds a fresh database in SQL (``INSERT ... SELECT generate_series``: a million answers in
seconds), then runs ``export_run("item_answers", "csv")`` in a *fresh child process*, consuming
the streamed CSV as a download would, and measures its wall time and the growth of the child's
peak resident memory (``ru_maxrss`` before and after), once more under ``tracemalloc`` for the
peak of Python allocations. Targets: at most 10 s and under 200 MB growth for 1,000,000 answers.
Then times Excel, PDF and FHIR on a smaller clinic. Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import ROOT, fresh_database, server_env, write_section

BIG, SMALL = "bench-big", "bench-small"


def setup_django(url: str) -> None:
    os.environ.update(server_env(url, BORDIN_TESTING="1"))
    import django

    django.setup()


def seed(*, slug: str, patients: int, sessions: int) -> int:
    """One clinic with ``patients`` patients of ``sessions`` answered weekly sessions each."""
    from django.db import connection

    from clinics.models import Clinic, Episode, Patient, Session
    from clinics.services import staff_create
    from monitoring.models import Answer, Instrument, InstrumentItem, Response

    clinic = Clinic.objects.create(slug=slug, name=f"Bench clinic {slug}")
    therapist = staff_create(clinic=clinic, email=f"t@{slug}.test", name="Theo Rapist", role="therapist")
    instrument = Instrument.objects.get(code="bordin-alliance", version=1)
    p, e, s = Patient._meta.db_table, Episode._meta.db_table, Session._meta.db_table
    r, a, i = Response._meta.db_table, Answer._meta.db_table, InstrumentItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {p} (code, clinic_id, label, external_id, language, contact_email, contact_phone,"  # noqa: S608 - table names from _meta; values are parameters
            " is_active, therapist_id, created_at)"
            " SELECT gen_random_uuid(), %s, 'P' || g, 'EXT-' || g, 'en', '', '', true, %s, now()"
            " FROM generate_series(1, %s) g",
            [clinic.pk, therapist.pk, patients],
        )
        cursor.execute(
            f"INSERT INTO {e} (code, patient_id, therapist_id, treatment, started_on)"  # noqa: S608 - table names from _meta; values are parameters
            f" SELECT gen_random_uuid(), id, %s, (ARRAY['cbt','psychodynamic','exposure'])[1 + id %% 3],"
            f" date '2025-01-06' + (id %% 200)::int FROM {p} WHERE clinic_id = %s",
            [therapist.pk, clinic.pk],
        )
        cursor.execute(
            f"INSERT INTO {s} (code, episode_id, number, date, status)"  # noqa: S608 - table names from _meta; values are parameters
            f" SELECT gen_random_uuid(), e.id, n, e.started_on + (7 * (n - 1))::int, 'held'"
            f" FROM {e} e JOIN {p} p ON p.id = e.patient_id, generate_series(1, %s) n WHERE p.clinic_id = %s",
            [sessions, clinic.pk],
        )
        cursor.execute(
            f"INSERT INTO {r} (session_id, instrument_id, rater, measure, source, submitted_at, entered_by_id)"  # noqa: S608 - table names from _meta; values are parameters
            f" SELECT s.id, %s, 'patient', 'alliance', 'import', s.date + time '17:00', NULL FROM {s} s"
            f" JOIN {e} e ON e.id = s.episode_id JOIN {p} p ON p.id = e.patient_id WHERE p.clinic_id = %s",
            [instrument.pk, clinic.pk],
        )
        # A patient-level mean plus noise on every answer, clipped to 1-5: realistic enough for
        # the analysis-based reports, and every value a valid answer.
        cursor.execute(
            f"INSERT INTO {a} (response_id, item_id, value)"  # noqa: S608 - table names from _meta; values are parameters
            f" SELECT r.id, i.id, LEAST(5, GREATEST(1, round(3.2 + (e.patient_id %% 7) * 0.25"
            f"   + (random() - 0.5) * 1.4 + (random() - 0.5))))::int"
            f" FROM {r} r JOIN {s} s ON s.id = r.session_id JOIN {e} e ON e.id = s.episode_id"
            f" JOIN {p} p ON p.id = e.patient_id CROSS JOIN {i} i"
            f" WHERE p.clinic_id = %s AND i.instrument_id = %s",
            [clinic.pk, instrument.pk],
        )
        cursor.execute("ANALYZE")
    return Answer.objects.filter(response__session__episode__patient__clinic=clinic).count()


def measure_child(url: str, *, tracemalloc: bool, fmt: str = "csv") -> dict[str, float]:
    """Run the streamed export in a fresh process, so its peak memory is the export's own."""
    env = server_env(url, BORDIN_TESTING="1")
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, "--format", fmt]
        + (["--tracemalloc"] if tracemalloc else []),
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(url: str, *, trace: bool, fmt: str) -> None:
    import resource
    import tracemalloc

    setup_django(url)
    from clinics.models import Clinic
    from monitoring.exports import ExportFilters
    from monitoring.exports.services import VIA_COMMAND, export_run

    clinic = Clinic.objects.get(slug=BIG)
    # Warm up imports, the connection and pandas on the small clinic, then take the baseline.
    small = export_run(
        clinic=Clinic.objects.get(slug=SMALL),
        user=None,
        identifier="item_answers",
        fmt=fmt,
        filters=ExportFilters(),
        via=VIA_COMMAND,
    )
    for _ in small.content:
        pass
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    rendered = export_run(
        clinic=clinic,
        user=None,
        identifier="item_answers",
        fmt=fmt,
        filters=ExportFilters(),
        via=VIA_COMMAND,
    )
    first_rows = None
    size = lines = 0
    for block in rendered.content:
        if first_rows is None and lines:  # the block after the header: the first chunk of rows
            first_rows = time.perf_counter() - began
        size += len(block)
        lines += block.count(b"\n")
    wall = time.perf_counter() - began
    peak_traced = tracemalloc.get_traced_memory()[1] if trace else 0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "wall_s": wall,
                "first_rows_s": first_rows or 0.0,
                "bytes": size,
                "rows": lines - 1,
                "rss_before_mb": before / 1024,
                "rss_peak_mb": after / 1024,
                "rss_growth_mb": (after - before) / 1024,
                "traced_peak_mb": peak_traced / 2**20,
            }
        )
    )


def time_formats() -> list[tuple[str, float, int]]:
    """Wall time of each other export of the small clinic (one run each, after a warm-up)."""
    from clinics.models import Clinic, Patient
    from monitoring.exports import ExportFilters
    from monitoring.exports.services import VIA_COMMAND, export_run

    clinic = Clinic.objects.get(slug=SMALL)
    patient = Patient.objects.filter(clinic=clinic).order_by("pk").first()
    assert patient is not None
    runs = [
        ("item_answers", "xlsx", ExportFilters()),
        ("item_answers", "fhir", ExportFilters()),
        ("session_scores", "csv", ExportFilters()),
        ("session_scores", "xlsx", ExportFilters()),
        ("patient_levels", "xlsx", ExportFilters()),
        ("clinic_summary", "pdf", ExportFilters()),
        ("patient_levels", "pdf", ExportFilters()),
        ("patient_report", "pdf", ExportFilters(patient_code=str(patient.code))),
    ]
    export_run(
        clinic=clinic,
        user=None,
        identifier="clinic_summary",
        fmt="pdf",
        filters=ExportFilters(),
        via=VIA_COMMAND,
    )  # warm-up: fonts, templates
    out = []
    for identifier, fmt, filters in runs:
        began = time.perf_counter()
        rendered = export_run(
            clinic=clinic, user=None, identifier=identifier, fmt=fmt, filters=filters, via=VIA_COMMAND
        )
        content = rendered.content
        size = len(content) if isinstance(content, bytes) else sum(len(b) for b in content)
        out.append((f"{identifier} as {fmt}", time.perf_counter() - began, size))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=42)
    parser.add_argument("--small-patients", type=int, default=100)
    parser.add_argument("--small-sessions", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a small smoke run; does not write the doc")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--format", default="csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, trace=args.tracemalloc, fmt=args.format)
        return
    if args.quick:
        args.patients, args.sessions, args.small_patients, args.small_sessions = 200, 10, 20, 8
    with fresh_database(f"bordin_bench_exports_{os.getpid()}") as url:
        setup_django(url)
        began = time.perf_counter()
        answers = seed(slug=BIG, patients=args.patients, sessions=args.sessions)
        small_answers = seed(slug=SMALL, patients=args.small_patients, sessions=args.small_sessions)
        seeding = time.perf_counter() - began
        from django.db import connection

        connection.close()
        plain = [measure_child(url, tracemalloc=False) for _ in range(3)]
        traced = measure_child(url, tracemalloc=True)
        xlsx = measure_child(url, tracemalloc=False, fmt="xlsx")
        formats = time_formats()
        connection.close()
    best = min(plain, key=lambda m: m["wall_s"])
    median = sorted(m["wall_s"] for m in plain)[1]
    growth = max(m["rss_growth_mb"] for m in plain)
    import numpy
    import pandas

    load = os.getloadavg()[0]
    rows = "\n".join(
        f"| {name} | {seconds:.2f} s | {size / 1024:,.0f} KiB |" for name, seconds, size in formats
    )
    table = f"""
## Exports (`bench/exports.py`)

Measured {time.strftime("%Y-%m-%d %H:%M")} on {os.cpu_count()} cores ({platform.machine()}), Python
{platform.python_version()}, pandas {pandas.__version__}, numpy {numpy.__version__}, PostgreSQL on loopback;
load average {load:.2f} at the end (other work shares the machine).

**Streamed item-level CSV** (`item_answers`, the import layout): {answers:,} answers
({args.patients:,} patients x {args.sessions} sessions x 12 items), seeded in SQL in {seeding:.0f} s. Each run is
a fresh process that warms up on a small export, then streams the whole CSV as a download would
(server-side cursor, {best["rows"]:,} rows, {best["bytes"] / 2**20:.0f} MiB).

| measure | result | target |
| --- | --- | --- |
| wall time, median of 3 runs (best) | **{median:.2f} s** ({best["wall_s"]:.2f} s) | <= 10 s: {"met" if median <= 10 else "NOT met"} |
| time to the first 20,000 rows (query planned, cursor open, first chunk out) | {best["first_rows_s"] * 1000:.0f} ms | |
| peak RSS growth of the process (`ru_maxrss`), worst of 3 | **{growth:.0f} MB** (from {best["rss_before_mb"]:.0f} MB) | < 200 MB: {"met" if growth < 200 else "NOT met"} |
| peak of Python allocations during the export (`tracemalloc`, separate run) | {traced["traced_peak_mb"]:.0f} MB | |

**The same {answers:,} answers as XLSX** (one run in a fresh process; XlsxWriter's
`constant_memory` mode writes each row to a temporary file as it goes, so memory does not grow
with the rows; the workbook, {xlsx["bytes"] / 2**20:.0f} MiB, is then streamed from disk):

| measure | result | target |
| --- | --- | --- |
| wall time | **{xlsx["wall_s"]:.1f} s** | <= 20 s, or constant memory: {"met" if xlsx["wall_s"] <= 20 or xlsx["rss_growth_mb"] < 200 else "NOT met"} |
| peak RSS growth of the process (`ru_maxrss`) | **{xlsx["rss_growth_mb"]:.0f} MB** (from {xlsx["rss_before_mb"]:.0f} MB) | |

**Other formats** on a smaller clinic: {small_answers:,} answers ({args.small_patients} patients x
{args.small_sessions} sessions); one run each after a warm-up, analysis included where the report needs it.

| export | wall time | size |
| --- | --- | --- |
{rows}

Reproduce: `.venv/bin/python bench/exports.py` (about {max(1, round((seeding + 6 * median + 30) / 60))} min).
"""
    print(table)
    if not args.quick:
        write_section("exports", table)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
