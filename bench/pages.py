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


def seed(url: str, patients: int, sessions: int) -> str:
    os.environ.update(server_env(url, BORDIN_TESTING="1"))
    import django

    django.setup()
    from clinics.models import Clinic, Episode
    from clinics.services import staff_create
    from monitoring.analytics.simulate import simulate_cohort
    from monitoring.collection.importing import items_import_csv, responses_import
    from monitoring.flags.services import clinic_estimate_refresh, episode_flags_refresh

    clinic = Clinic.objects.create(slug="bench", name="Bench clinic")
    therapist = staff_create(clinic=clinic, email="t@bench.test", role="therapist")
    cohort = simulate_cohort(patients, seed=5, sessions=(sessions, sessions))
    responses_import(
        clinic=clinic, therapist=therapist, file=items_import_csv(cohort.items, first_date=date(2026, 1, 5))
    )
    clinic_estimate_refresh(clinic=clinic)
    for episode_id in Episode.objects.values_list("pk", flat=True):
        episode_flags_refresh(episode_id=episode_id)
    return therapist.email


def timed(client, path: str, repeat: int) -> list[float]:
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
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a small smoke run; does not write the doc")
    args = parser.parse_args()
    if args.quick:
        args.patients, args.sessions, args.repeat = 10, 8, 5
    with fresh_database(f"bordin_bench_pages_{os.getpid()}") as url:
        email = seed(url, args.patients, args.sessions)
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from clinics.models import Patient
        from tests.auth import sign_in

        client = Client(HTTP_HOST="127.0.0.1")
        # Signed in as after password and authenticator code (the pages need two-factor).
        sign_in(client, get_user_model().objects.get(email=email))
        # The patient with the most flags: the heaviest page.
        patient = max(Patient.objects.all(), key=lambda p: p.episodes.get().flags.count())
        results = {
            "health check (baseline)": timed(client, "/healthz", args.repeat),
            f"caseload, {args.patients} patients": timed(client, "/", args.repeat),
            f"patient page, {args.sessions} sessions, {patient.episodes.get().flags.count()} flags": timed(
                client, f"/patients/{patient.code}/", args.repeat
            ),
        }
        with CaptureQueriesContext(connection) as caseload_queries:
            client.get("/")
        with CaptureQueriesContext(connection) as patient_queries:
            client.get(f"/patients/{patient.code}/")
        connection.close()
    base = statistics.median(results["health check (baseline)"])
    rows = "\n".join(
        f"| {name} | {statistics.median(v):.1f} | {sorted(v)[int(0.95 * (len(v) - 1))]:.1f} | "
        f"{statistics.median(v) / base:.0f}x |"
        for name, v in results.items()
    )
    targets = list(results.values())
    verdict_caseload = statistics.median(targets[1]) <= 150
    verdict_patient = statistics.median(targets[2]) <= 100
    table = f"""
## Therapist pages (`bench/pages.py`)

PostgreSQL, one therapist with {args.patients} active patients of {args.sessions} answered sessions
each (simulated clinic, flags stored). Server time per request in-process (Django test client:
middleware, queries, the vectorised analysis of the whole caseload, charts, template; no
network), {args.repeat} requests each after one warm-up.

| page | median ms | p95 ms | median vs health check |
| --- | --- | --- | --- |
{rows}

Queries: caseload {len(caseload_queries)}, patient page {len(patient_queries)} (constant in the number of
patients and sessions; tests/care/test_dashboards.py checks this).
Targets: caseload at most 150 ms median: {"met" if verdict_caseload else "NOT met"}; patient page at most
100 ms: {"met" if verdict_patient else "NOT met"}.
Reproduce: `.venv/bin/python bench/pages.py`.
"""
    print(table)
    if not args.quick:
        write_section("pages", table)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
