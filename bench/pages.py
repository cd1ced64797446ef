"""Server time of the therapist's pages on PostgreSQL.

    .venv/bin/python bench/pages.py [--patients 60] [--sessions 30] [--repeat 40]

Seeds a fresh database with one therapist's caseload (simulated patients, every session
answered, flags stored), then times the caseload and a patient page in-process with Django's
test client (server time: middleware, queries, analysis, charts and template; no network).
The health check is timed in the same run as a baseline for the fixed cost of a request.
Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import ROOT, fresh_database, server_env, write_section


def seed(url: str, caseloads: dict[str, int], sessions: int) -> dict[str, str]:
    """One therapist per caseload size (email to patients), every session answered, flags and
    snapshots stored as the write path stores them. Returns caseload name to therapist email."""
    os.environ.update(server_env(url, BORDIN_TESTING="1"))
    import django

    django.setup()
    from django.db import connection

    from clinics.models import Clinic, Episode
    from clinics.services import staff_create
    from monitoring.analytics.simulate import simulate_cohort
    from monitoring.collection.importing import items_import_csv, responses_import
    from monitoring.flags.services import clinic_estimate_refresh, episodes_flags_refresh

    clinic = Clinic.objects.create(slug="bench", name="Bench clinic")
    emails = {}
    for i, (name, patients) in enumerate(caseloads.items()):
        therapist = staff_create(clinic=clinic, email=f"t{i}@bench.test", role="therapist")
        cohort = simulate_cohort(patients, seed=5 + i, sessions=(sessions, sessions))
        file = items_import_csv(cohort.items, first_date=date(2026, 1, 5), prefix=f"T{i}-")
        responses_import(clinic=clinic, therapist=therapist, file=file)
        emails[name] = therapist.email
    clinic_estimate_refresh(clinic=clinic)
    episodes_flags_refresh(episode_ids=list(Episode.objects.values_list("pk", flat=True)))
    # The planner's statistics, as autovacuum keeps them on a database in use (straight after a
    # bulk load it would plan the first queries for empty tables).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return emails


def timed(client, path: str, repeat: int, warm: bool = True) -> list[float]:
    if warm:
        client.get(path)  # warm caches and connections
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--large", type=int, default=300, help="patients of the large caseload")
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a small smoke run; does not write the doc")
    args = parser.parse_args()
    if args.quick:
        args.patients, args.large, args.sessions, args.repeat = 10, 20, 8, 5
    with fresh_database(f"bordin_bench_pages_{os.getpid()}") as url:
        emails = seed(url, {"small": args.patients, "large": args.large}, args.sessions)
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from clinics.models import Episode, Patient
        from monitoring.care.patient_page import patient_page_forget
        from monitoring.care.rows import rows_cache_forget
        from monitoring.flags.snapshots import charts_cache_forget
        from tests.auth import sign_in

        def signed_in(email: str) -> Client:
            client = Client(HTTP_HOST="127.0.0.1")
            # Signed in as after password and authenticator code (the pages need two-factor).
            sign_in(client, get_user_model().objects.get(email=email))
            return client

        small, large = signed_in(emails["small"]), signed_in(emails["large"])
        # The small caseload's patient with the most flags: the heaviest page.
        patient = max(
            Patient.objects.filter(therapist__email=emails["small"]),
            key=lambda p: p.episodes.get().flags.count(),
        )
        flags = patient.episodes.get().flags.count()
        names = {
            "health": "health check (baseline)",
            "small": f"caseload, {args.patients} patients",
            "large": f"caseload, {args.large} patients",
            "patient": f"patient page, {args.sessions} sessions, {flags} flags",
        }
        names.update(
            {
                "small_cold": f"caseload, {args.patients} patients, every row rendered afresh",
                "patient_cold": "patient page rendered afresh (as after a new answer)",
            }
        )
        paths = {"health": (small, "/healthz"), "small": (small, "/"), "large": (large, "/")}
        paths["patient"] = (small, f"/patients/{patient.code}/")
        paths["small_cold"] = paths["small"]
        paths["patient_cold"] = paths["patient"]
        caseload = list(Patient.objects.filter(therapist__email=emails["small"]).values_list("pk", flat=True))
        episodes = list(Episode.objects.values_list("pk", flat=True))
        # What a change (a new answer, an acknowledgement, a deployment) drops before a read.
        forget = {
            "small_cold": lambda: rows_cache_forget(caseload),
            "patient_cold": lambda: (patient_page_forget([patient.pk]), charts_cache_forget(episodes)),
        }
        results: dict[str, list[float]] = {key: [] for key in names}
        for key in names:  # one warm-up each (caches, connections)
            paths[key][0].get(paths[key][1])
        # Interleaved rounds: a burst of load on the machine hits every page alike, not one.
        for _ in range(args.repeat):
            for key, (client, path) in paths.items():
                if key in forget:
                    forget[key]()
                results[key] += timed(client, path, 1, warm=False)
        queries = {}
        for key in ("small", "large", "patient"):
            client, path = paths[key]
            with CaptureQueriesContext(connection) as captured:
                client.get(path)
            queries[key] = len(captured)
        connection.close()
    base = statistics.median(results["health"])
    targets = {"small": 10, "large": 15, "patient": 8}
    rows = "\n".join(
        f"| {names[key]} | {statistics.median(v):.1f} | {sorted(v)[int(0.95 * (len(v) - 1))]:.1f} | "
        f"{statistics.median(v) / base:.1f}x | "
        + (
            f"{targets[key]}x: {'met' if statistics.median(v) / base <= targets[key] else 'NOT met'}"
            if key in targets
            else ""
        )
        + " |"
        for key, v in results.items()
    )
    table = f"""
## Therapist pages (`bench/pages.py`)

PostgreSQL, two therapists: one with {args.patients} active patients, one with {args.large}, each
patient with {args.sessions} answered sessions (simulated clinic, flags and analysis snapshots
stored by the write path; the database analysed, as autovacuum keeps it). Server time per
request in-process (Django test client: middleware, sign-in checks, queries, the access entry,
the cached or freshly rendered content, template; no network), {args.repeat} interleaved rounds
after one warm-up each. The targets are for the pages as a reader meets them between changes:
each caseload row and the patient page's content are rendered once per state of what they show
(the episode's revision counter, docs/architecture.md) and served from the cache until it
changes; the "rendered afresh" rows are the first read after a change (a new answer, an
acknowledgement, a deployment), everything rendered again. The ratio to the health check in the
same run is the figure that travels between machines.

| page | median ms | p95 ms | median vs health check | target |
| --- | --- | --- | --- | --- |
{rows}

Queries (from the cache): caseload {queries["small"]} ({args.patients} patients) and {queries["large"]}
({args.large} patients), patient page {queries["patient"]} (constant in the number of patients and sessions, cached
or rendered afresh; tests/care/test_dashboards.py checks this).
Reproduce: `.venv/bin/python bench/pages.py`.
"""
    print(table)
    if not args.quick:
        write_section("pages", table)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
