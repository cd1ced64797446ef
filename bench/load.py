"""Mixed load over HTTP: therapists, patients and integrations at once (gunicorn + PostgreSQL on
loopback).

    .venv/bin/python bench/load.py [--clients 20] [--duration 60] [--mode both] [--keep-alive S] [--quick]
    .venv/bin/python bench/load.py --instances 2 [--rq-workers 2]      # scale-out, its own section

Seeds a fresh database with one clinic: one therapist per client, each with a caseload of
simulated patients (12 earlier sessions each, imported; flags stored) and form links for their
next sessions, an authenticator app (TOTP) and an API token. Each client then signs in over HTTP
(password, then the authenticator code) and, for the duration of the run and without pauses,
does one of these at random, as its therapist and that therapist's patients and integration
would:

- opens the caseload page (``/``) or one of its patients' pages (``/patients/<code>/``);
- plays a patient: opens the next unused form link (``/f/<token>/``), posts the 12 answers and
  follows the redirect to the thank-you page; one link in ten is posted twice at once (a double
  click), which must store the answers once;
- reads the API with its token (``Authorization: Bearer``): patients, one patient, a patient's
  analysis, flags, the caseload.

Every response with another status than expected, and every exception, is counted per kind of
request (a request that gets no answer is listed with how long its connection had been idle).
Afterwards the database must hold exactly one stored response for each submission the server
accepted and none for any other link, and one audit-trail access entry for each read of patient
data that was answered. Latency percentiles per kind and throughput go to
docs/performance.md (not with ``--quick``). As bench/submit.py, by default it runs twice: with
the analysis in the request (the immediate task backend of a default install) and with a
database task worker running next to the server.

``--instances N`` shows the scaled-out deployment instead: N gunicorn instances (each on its own
loopback port, as N hosts behind a load balancer would be) and ``--rq-workers`` RQ workers
(``TASKS_BACKEND=django_tasks_rq.RQBackend``) sharing one PostgreSQL and one Redis, the clients
spread over the instances; it runs one instance and then N in the same run, each on a fresh
database, and writes its own section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import KEEP_ALIVE, ROOT, fresh_database, gunicorn, percentile, server_env, write_section
from bench.submit import DB_BACKEND, analysed_episodes, drain_worker

RQ_BACKEND = "django_tasks_rq.RQBackend"
#: SimpleWorker runs each job in the worker process (RQ's default forks a child per job, which
#: imports the analysis libraries again every time; docs/operations.md).
RQ_WORKER = ["manage.py", "rqworker", "default", "--job-class", "django_tasks_rq.Job"]
RQ_WORKER += ["--worker-class", "rq.worker.SimpleWorker"]

PRIOR_SESSIONS = 12
TIMEOUT = 30  # seconds per request
DOUBLE_EVERY = 10  # one link in ten is posted twice at once

# Kinds of request, in report order.
CASELOAD = "caseload page `/`"
PATIENT = "patient page `/patients/<code>/`"
FORM_OPEN = "form link opened `GET /f/<token>/`"
FORM_POST = "form posted `POST /f/<token>/` (12 answers)"
FORM_DONE = "thank-you page `/f/<token>/done/`"
API = {
    "API patients `/api/v1/patients/`": "/api/v1/patients/",
    "API patient `/api/v1/patients/<code>/`": "/api/v1/patients/{code}/",
    "API analysis `/api/v1/patients/<code>/analysis/`": "/api/v1/patients/{code}/analysis/",
    "API flags `/api/v1/flags/`": "/api/v1/flags/",
    "API caseload `/api/v1/caseload/`": "/api/v1/caseload/",
}
KINDS = [CASELOAD, PATIENT, FORM_OPEN, FORM_POST, FORM_DONE, *API]
# Every staff read of patient data writes one access entry to the audit trail (monitoring.security.audit):
# (via, what) of the entry each kind writes. The API lists write none when the page is empty.
AUDITED = dict(
    zip(
        [CASELOAD, PATIENT, *API],
        [
            ("web", "caseload"),
            ("web", "patient page"),
            ("api", "patient list"),
            ("api", "patient"),
            ("api", "patient analysis"),
            ("api", "flag list"),
            ("api", "caseload"),
        ],
        strict=True,
    )
)
API_LISTS = {kind for kind, path in API.items() if "{code}" not in path}
# What a client does next, with its weight (a patient's form is three requests).
ACTIONS = {"caseload": 12, "patient": 22, "form": 22} | {kind: 44 / len(API) for kind in API}


@dataclass
class Staff:
    email: str
    password: str
    secret: str  # TOTP secret of their authenticator app
    api_token: str
    patients: list[str]  # patient codes of their caseload
    links: list[tuple[str, dict[str, str]]]  # (token, form data), in session order


def seed(database_url: str, therapists: int, patients: int, new_sessions: int) -> list[Staff]:
    """One clinic; per client a therapist with ``patients`` patients, their history, flags,
    ``new_sessions`` form links per patient, an authenticator app and an API token."""
    os.environ.update(server_env(database_url))
    import django

    django.setup()
    from datetime import date, timedelta

    from django.db import connections

    from clinics.models import Clinic, Episode, Patient, Session
    from clinics.services import staff_create
    from monitoring.analytics.simulate import simulate_cohort
    from monitoring.collection.importing import items_import_csv, responses_import
    from monitoring.collection.invitations import invitation_create
    from monitoring.flags.services import clinic_estimate_refresh, episode_flags_refresh
    from monitoring.security.allauth import totp_activate, totp_secret_new
    from monitoring.security.tokens import api_token_create

    clinic = Clinic.objects.create(slug="bench", name="Bench clinic", reminder_delay_hours=0)
    cohort = simulate_cohort(therapists * patients, seed=11, sessions=(PRIOR_SESSIONS + new_sessions,) * 2)
    items = cohort.items
    labels = sorted(items["patient"].unique())
    start = date(2026, 1, 5)
    staff = []
    for i in range(therapists):
        password = secrets.token_urlsafe(18)
        user = staff_create(
            clinic=clinic,
            email=f"therapist{i}@bench.test",
            name=f"Therapist {i}",
            role="therapist",
            password=password,
        )
        secret = totp_secret_new()
        totp_activate(user=user, secret=secret)
        _, api_token = api_token_create(user=user, clinic=clinic, name=f"load bench {i}")
        mine = items[items["patient"].isin(labels[i * patients : (i + 1) * patients])]
        prior = mine[mine["session"] <= PRIOR_SESSIONS]
        responses_import(clinic=clinic, therapist=user, file=items_import_csv(prior, first_date=start))
        episodes = {
            e.patient.label: e
            for e in Episode.objects.filter(patient__therapist=user).select_related("patient")
        }
        links = []
        later = mine[mine["session"] > PRIOR_SESSIONS].sort_values(["session", "patient"])
        for row in later.itertuples(index=False):
            session = Session.objects.create(
                episode=episodes[row.patient],
                number=row.session,
                date=start + timedelta(weeks=row.session - 1),
                status="held",
            )
            _, token = invitation_create(session=session, created_by=user)
            links.append((token, {f"item_{n}": str(getattr(row, f"item_{n}")) for n in range(1, 13)}))
        codes = [str(c) for c in Patient.objects.filter(therapist=user).values_list("code", flat=True)]
        staff.append(Staff(user.email, password, secret, api_token, codes, links))
    clinic_estimate_refresh(clinic=clinic)
    for episode_id in Episode.objects.values_list("pk", flat=True):
        episode_flags_refresh(episode_id=episode_id)
    connections.close_all()
    return staff


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def listed(response: requests.Response) -> bool:
    """Whether an API list answered with at least one row."""
    try:
        return bool(response.json().get("results"))
    except ValueError:
        return False


@dataclass
class Tally:
    """One client's figures; merged after the run."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[str] = field(default_factory=list)  # the first few unexpected answers, for diagnosis
    # Every request that got no answer: (kind, exception, seconds since this connection pool's
    # previous answer, or None for a first request).
    failures: list[tuple[str, str, float | None]] = field(default_factory=list)
    posted: set[str] = field(default_factory=set)  # tokens posted at least once
    accepted: list[str] = field(default_factory=list)  # tokens whose POST was answered 302 (one per 302)
    uncertain: set[str] = field(default_factory=set)  # tokens whose POST got no answer
    audited: Counter[tuple[str, str]] = field(default_factory=Counter)  # access entries to expect
    doubles: int = 0
    doubles_ok: int = 0  # exactly one of the two posts accepted, the other shown the thank-you page
    links_short: int = 0  # form actions skipped because the client had used all its links
    sign_in: float = float("nan")


#: The servers sit behind one proxy hop (the load balancer of docs/operations.md), which reports
#: each client's address in X-Forwarded-For.
PROXY_ENV = {"TRUSTED_PROXIES": "1"}


class Client:
    def __init__(self, base: str, staff: Staff, number: int) -> None:
        self.base, self.staff, self.number = base, staff, number
        self.rng = random.Random(number)  # the load mix, not security
        self.browser = requests.Session()
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {staff.api_token}"
        # Each therapist from their own address, as the load balancer reports it (the servers
        # trust one proxy hop, PROXY_ENV): sign-in limits are per address, and twenty colleagues
        # signing in within a minute from one address is not what a clinic looks like.
        for session in (self.browser, self.api):
            session.headers["X-Forwarded-For"] = f"10.0.{number // 250}.{number % 250 + 1}"
        self.tally = Tally()
        self.next_link = 0

    # --- plumbing ---

    def request(
        self,
        kind: str,
        method: str,
        path: str,
        expect: tuple[int, ...],
        http: requests.Session | None = None,
        tally: Tally | None = None,
        **kwargs: Any,
    ) -> requests.Response | None:
        http, tally = http or self.browser, tally or self.tally
        began = time.perf_counter()
        last = getattr(http, "last_answer", None)  # when this connection pool last got an answer
        try:
            response = http.request(
                method, self.base + path, timeout=TIMEOUT, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            tally.errors[kind][type(exc).__name__] += 1
            tally.failures.append((kind, repr(exc), None if last is None else began - last))
            return None
        http.last_answer = time.perf_counter()  # type: ignore[attr-defined]
        tally.latencies[kind].append(http.last_answer - began)  # type: ignore[attr-defined]
        if response.status_code == 200 and kind in AUDITED and (kind not in API_LISTS or listed(response)):
            tally.audited[AUDITED[kind]] += 1
        if response.status_code not in expect:
            tally.errors[kind][f"HTTP {response.status_code}"] += 1
            if len(tally.samples) < 10:
                where = response.headers.get("Location", "")
                tally.samples.append(f"{kind} {path}: {response.status_code} {where} {response.text[:200]!r}")
        return response

    def sign_in(self) -> bool:
        """Password, then the authenticator code, as a browser does; True when signed in."""
        from tests.auth import totp_code

        began = time.perf_counter()
        page = self.browser.get(self.base + "/accounts/login/", timeout=TIMEOUT)
        csrf = CSRF_INPUT.search(page.text)
        if page.status_code != 200 or csrf is None:
            self.tally.samples.append(f"sign-in page: {page.status_code}")
            return False
        step = self.browser.post(
            self.base + "/accounts/login/",
            data={"login": self.staff.email, "password": self.staff.password, "csrfmiddlewaretoken": csrf[1]},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        if step.status_code != 302 or "/accounts/2fa/authenticate/" not in step.headers.get("Location", ""):
            errors = re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', step.text, flags=re.S)
            self.tally.samples.append(
                f"password step: {step.status_code} {step.headers.get('Location')} {errors[:2]!r}"
            )
            return False
        page = self.browser.get(self.base + "/accounts/2fa/authenticate/", timeout=TIMEOUT)
        csrf = CSRF_INPUT.search(page.text)
        if page.status_code != 200 or csrf is None:
            self.tally.samples.append(f"code page: {page.status_code}")
            return False
        for _ in range(2):  # a code is good once per 30 s window: if refused, wait for the next one
            done = self.browser.post(
                self.base + "/accounts/2fa/authenticate/",
                data={"code": totp_code(self.staff.secret), "csrfmiddlewaretoken": csrf[1]},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if done.status_code == 302:
                break
            time.sleep(31 - time.time() % 30)
        else:
            self.tally.samples.append(f"code step: {done.status_code}")
            return False
        home = self.browser.get(self.base + "/", timeout=TIMEOUT, allow_redirects=False)
        self.tally.sign_in = time.perf_counter() - began
        self.tally.audited[AUDITED[CASELOAD]] += home.status_code == 200
        if home.status_code != 200:
            self.tally.samples.append(
                f"after sign-in, / answered {home.status_code} {home.headers.get('Location')}"
            )
            return False
        return True

    def warm_up(self) -> None:
        """One uncounted round of the pages and API reads (a server in service is warm: its
        workers have imported the analysis and chart code); unexpected answers still count."""
        warm = Tally()
        code = self.staff.patients[0]
        self.request(CASELOAD, "GET", "/", (200,), tally=warm)
        self.request(PATIENT, "GET", f"/patients/{code}/", (200,), tally=warm)
        for kind, path in API.items():
            self.request(kind, "GET", path.format(code=code), (200,), http=self.api, tally=warm)
        for kind, counts in warm.errors.items():
            self.tally.errors[kind].update(counts)
        self.tally.samples.extend(warm.samples)
        self.tally.failures.extend(warm.failures)
        self.tally.audited.update(warm.audited)

    # --- what a client does ---

    def run(self, deadline: float) -> None:
        actions, weights = list(ACTIONS), list(ACTIONS.values())
        while time.perf_counter() < deadline:
            action = self.rng.choices(actions, weights)[0]
            if action == "caseload":
                self.request(CASELOAD, "GET", "/", (200,))
            elif action == "patient":
                self.request(PATIENT, "GET", f"/patients/{self.rng.choice(self.staff.patients)}/", (200,))
            elif action == "form":
                if self.next_link >= len(self.staff.links):
                    self.tally.links_short += 1  # ran out of links: counted, reported
                    continue
                self.form(
                    *self.staff.links[self.next_link],
                    double=self.next_link % DOUBLE_EVERY == 1,
                )
                self.next_link += 1
            else:
                path = API[action].format(code=self.rng.choice(self.staff.patients))
                self.request(action, "GET", path, (200,), http=self.api)

    def form(self, token: str, data: dict[str, str], *, double: bool) -> None:
        path = f"/f/{token}/"
        patient = requests.Session()  # the patient's own browser: no staff cookies
        if self.request(FORM_OPEN, "GET", path, (200,), http=patient) is None:
            patient.close()
            return
        self.tally.posted.add(token)
        if not double:
            posted = self.request(FORM_POST, "POST", path, (302,), http=patient, data=data)
            statuses = [self.note_post(token, posted)]
        else:
            # A double click: the same answers posted twice at the same moment, from two connections.
            self.tally.doubles += 1
            gate, other = threading.Barrier(2, timeout=TIMEOUT), Tally()
            answers: list[requests.Response | None] = [None]

            def second() -> None:
                gate.wait()
                answers[0] = self.request(
                    FORM_POST, "POST", path, (200, 302), http=requests.Session(), tally=other, data=data
                )

            helper = threading.Thread(target=second)
            helper.start()
            gate.wait()
            posted = self.request(FORM_POST, "POST", path, (200, 302), http=patient, data=data)
            helper.join()
            self.merge(other)
            statuses = [self.note_post(token, posted), self.note_post(token, answers[0])]
            if sorted(statuses) == [200, 302]:
                self.tally.doubles_ok += 1
            else:
                self.tally.errors[FORM_POST][f"double click answered {sorted(statuses)}"] += 1
        if 302 in statuses:
            self.request(FORM_DONE, "GET", f"{path}done/?lang=en", (200,), http=patient)
        patient.close()

    def note_post(self, token: str, response: requests.Response | None) -> int:
        if response is None:
            self.tally.uncertain.add(token)
            return 0
        if response.status_code == 302:
            if "/done/" not in response.headers.get("Location", ""):
                self.tally.errors[FORM_POST]["302 elsewhere than the thank-you page"] += 1
            self.tally.accepted.append(token)
        return response.status_code

    def merge(self, other: Tally) -> None:
        for kind, values in other.latencies.items():
            self.tally.latencies[kind].extend(values)
        for kind, counts in other.errors.items():
            self.tally.errors[kind].update(counts)
        self.tally.samples.extend(other.samples[: max(0, 10 - len(self.tally.samples))])
        self.tally.failures.extend(other.failures)


def run_clients(bases: list[str], staff: list[Staff], duration: float) -> dict[str, Any]:
    """The clients, spread over the server instances (client n talks to instance n mod N)."""
    clients = [Client(bases[n % len(bases)], s, n) for n, s in enumerate(staff)]
    signed = [False] * len(clients)

    def sign_in(n: int) -> None:
        try:
            signed[n] = clients[n].sign_in()
            if signed[n]:
                clients[n].warm_up()
        except requests.RequestException as exc:
            clients[n].tally.samples.append(f"sign-in: {exc!r}")

    threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not all(signed):
        problems = [s for c in clients for s in c.tally.samples]
        raise RuntimeError(
            f"{signed.count(False)} of {len(clients)} clients could not sign in: {problems[:5]}"
        )
    sign_ins = [c.tally.sign_in for c in clients]
    print(
        f"{len(clients)} clients signed in (slowest {max(sign_ins):.1f} s), warmed up; "
        f"load for {duration:.0f} s",
        flush=True,
    )
    began = time.perf_counter()
    deadline = began + duration
    threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    total = Tally()
    for c in clients:
        for kind, values in c.tally.latencies.items():
            total.latencies[kind].extend(values)
        for kind, counts in c.tally.errors.items():
            total.errors[kind].update(counts)
        total.samples.extend(c.tally.samples)
        total.failures.extend(c.tally.failures)
        total.audited.update(c.tally.audited)
        total.posted |= c.tally.posted
        total.accepted.extend(c.tally.accepted)
        total.uncertain |= c.tally.uncertain
        total.doubles += c.tally.doubles
        total.doubles_ok += c.tally.doubles_ok
        total.links_short += c.tally.links_short
    return {"wall": wall, "tally": total, "sign_ins": sign_ins, "links": sum(len(s.links) for s in staff)}


def verify(staff: list[Staff], tally: Tally) -> dict[str, int]:
    """What the database holds for the links: stored once per accepted submission, nothing else."""
    from django.db.models import Count

    from clinics.tokens import token_hash
    from monitoring.models import Invitation, Response

    def sessions(tokens: set[str]) -> set[int]:
        hashes = [token_hash(t) for t in tokens]
        return set(Invitation.objects.filter(token_hash__in=hashes).values_list("session_id", flat=True))

    from auditlog.models import LogEntry

    logged: Counter[tuple[str, str]] = Counter()
    for data in LogEntry.objects.filter(action=LogEntry.Action.ACCESS).values_list(
        "additional_data", flat=True
    ):
        if data and data.get("event") in ("web read", "api read"):
            logged[(data["via"], data["what"])] += 1
    audit_missing = sum(max(0, n - logged[key]) for key, n in tally.audited.items())
    audit_extra = sum(max(0, n - tally.audited[key]) for key, n in logged.items())
    all_links = {t for s in staff for t, _ in s.links}
    accepted = set(tally.accepted)
    stored = Response.objects.filter(source="link", rater="patient")
    per_session = Counter(stored.values_list("session_id", flat=True))
    accepted_sessions = sessions(accepted)
    unposted = sessions(all_links - tally.posted)
    refused = sessions(tally.posted - accepted - tally.uncertain)
    return {
        "accepted": len(tally.accepted),  # 302 answers, so a link accepted twice counts twice
        "accepted_links": len(accepted),
        "stored": stored.count(),
        "stored_for_accepted": sum(per_session[s] for s in accepted_sessions),
        "links_used": Invitation.objects.filter(
            token_hash__in=[token_hash(t) for t in tally.posted], used_at__isnull=False
        ).count(),
        "stored_twice": sum(1 for n in per_session.values() if n > 1),
        "stored_unposted": sum(per_session[s] for s in unposted),
        "stored_refused": sum(per_session[s] for s in refused),
        "incomplete": stored.annotate(n=Count("answers")).exclude(n=12).count(),
        "uncertain": len(tally.uncertain),
        "reads": sum(tally.audited.values()),
        "audited": sum(logged.values()),
        "audit_missing": audit_missing,
        "audit_extra": audit_extra,
    }


def exactly_once(c: dict[str, int]) -> bool:
    return (
        c["accepted"] == c["accepted_links"] == c["stored"] == c["stored_for_accepted"] == c["links_used"]
        and c["stored_twice"] == c["stored_unposted"] == c["stored_refused"] == c["incomplete"] == 0
        and c["uncertain"] == 0
    )


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    extra = {"TASKS_BACKEND": DB_BACKEND} if mode == "worker" else {}
    began = time.perf_counter()
    with fresh_database(f"bordin_bench_load_{os.getpid()}") as url:
        print(f"[{mode}] database migrated in {time.perf_counter() - began:.0f} s", flush=True)
        began = time.perf_counter()
        staff = seed(url, args.clients, args.patients, args.new_sessions)
        print(f"[{mode}] seeded in {time.perf_counter() - began:.0f} s", flush=True)
        worker = None
        if mode == "worker":  # a deployment runs one task worker next to the web server
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--no-startup-delay", "-v0"],
                cwd=ROOT,
                env=server_env(url, **extra),
            )
        try:
            with gunicorn(
                url,
                workers=args.workers,
                threads=args.threads,
                keep_alive=args.keep_alive,
                **extra,
                **PROXY_ENV,
            ) as base:
                load = os.getloadavg()[0]
                result = run_clients([base], staff, args.duration)
                result["load"] = (load, os.getloadavg()[0])
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
        result["drain"] = drain_worker(url) if mode == "worker" else 0.0
        result["checks"] = verify(staff, result["tally"])
        result["analysed"] = analysed_episodes()
        from django.db import connections

        connections.close_all()
    return result


def run_scaled(instances: int, args: argparse.Namespace) -> dict[str, Any]:
    """``instances`` gunicorn instances and ``args.rq_workers`` RQ workers on one PostgreSQL and
    one Redis (a private one on a free loopback port, removed afterwards)."""
    from bench.faults import PrivateRedis

    began = time.perf_counter()
    redis = PrivateRedis()
    redis.start()
    env = {"TASKS_BACKEND": RQ_BACKEND, "REDIS_URL": redis.url}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with fresh_database(f"bordin_bench_scale_{os.getpid()}") as url:
            staff = seed(url, args.clients, args.patients, args.new_sessions)
            print(f"[{instances} instance(s)] seeded in {time.perf_counter() - began:.0f} s", flush=True)
            for _ in range(args.rq_workers):
                workers.append(
                    subprocess.Popen(
                        [sys.executable, *RQ_WORKER],
                        cwd=ROOT,
                        env=server_env(url, **env),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            redis.wait_for_worker()
            redis.warm_up(url, env)
            with ExitStack() as stack:
                bases = [
                    stack.enter_context(
                        gunicorn(
                            url,
                            workers=args.workers,
                            threads=args.threads,
                            keep_alive=args.keep_alive,
                            **env,
                            **PROXY_ENV,
                        )
                    )
                    for _ in range(instances)
                ]
                load = os.getloadavg()[0]
                result = run_clients(bases, staff, args.duration)
                result["load"] = (load, os.getloadavg()[0])
            # What is still queued when the load ends: the workers finish it, then stop.
            drained = time.perf_counter()
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=60)
            subprocess.run(
                [sys.executable, *RQ_WORKER, "--burst"],
                cwd=ROOT,
                env=server_env(url, **env),
                timeout=600,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result["drain"] = time.perf_counter() - drained
            result["checks"] = verify(staff, result["tally"])
            result["analysed"] = analysed_episodes()
            from django.db import connections

            connections.close_all()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        redis.stop()
    return result


def scaled_main(args: argparse.Namespace, command: str) -> None:
    """One instance, then ``args.instances``, in the same run; its own section of the doc."""
    results = {n: run_scaled(n, args) for n in (1, args.instances)}
    sections, verdicts = [], []
    for n, result in results.items():
        text, ok = summary("worker", result, args.keep_alive)
        verdicts.append(ok)
        sections.append(f"### {n} gunicorn instance{'s' if n > 1 else ''}, {args.rq_workers} RQ workers\n\n")
        sections[-1] += f"{table('worker', result)}\n{text}"

    def throughput(r: dict[str, Any]) -> float:
        return sum(len(v) for v in r["tally"].latencies.values()) / r["wall"]

    ratio = throughput(results[args.instances]) / throughput(results[1])
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = f"""
## Scaled out: {args.instances} gunicorn instances and {args.rq_workers} RQ workers (`bench/load.py --instances {args.instances}`)

Measured {now} on {os.cpu_count()} cores. The deployment of docs/operations.md ("Several
instances"): {args.instances} gunicorn instances (gthread, {args.workers} workers x {args.threads}
threads each, each on its own loopback port, as hosts behind a load balancer would be) and
{args.rq_workers} RQ workers (`TASKS_BACKEND=django_tasks_rq.RQBackend`, SimpleWorker) sharing one
PostgreSQL and one Redis; the same mixed load as the section above ({args.clients} clients for
{args.duration:.0f} s, client n on instance n mod {args.instances}), against one instance with
the same workers in the same run, each on a fresh database. Analysis runs in the RQ workers;
the checks are the same (exactly once, no stale episode after the queue drained, every read
audited).

**Throughput, {args.instances} instances against 1: {ratio:.2f}x** (all requests per second). On this one
machine the instances, the workers, PostgreSQL, Redis and the load clients share the same
{os.cpu_count()} cores, so more instances cannot add CPU here; what this run shows is that
instances share nothing but the database and the queue (sessions, limits and the analysis
state all live there), with no errors and nothing lost or doubled. On separate hosts each
instance brings its own cores.

{chr(10).join(sections)}
Verdict: **{"passed" if all(verdicts) else "FAILED"}**. Reproduce: `.venv/bin/python {command}`.
"""
    print(doc)
    if not args.quick:
        write_section("scaleout", doc)
    if not all(verdicts):
        sys.exit(1)


def table(mode: str, r: dict[str, Any]) -> str:
    t: Tally = r["tally"]
    lines = [
        "| request | count | per second | p50 ms | p95 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        ms = [x * 1000 for x in t.latencies.get(kind, [])]
        errors = sum(t.errors.get(kind, Counter()).values())
        if ms:
            lines.append(
                f"| {kind} | {len(ms)} | {len(ms) / r['wall']:.1f} | {percentile(ms, 50):.0f} | "
                f"{percentile(ms, 95):.0f} | {percentile(ms, 99):.0f} | {errors} |"
            )
        else:
            lines.append(f"| {kind} | 0 | 0 | - | - | - | {errors} |")
    everything = [x * 1000 for values in t.latencies.values() for x in values]
    errors = sum(sum(c.values()) for c in t.errors.values())
    lines.append(
        f"| **all requests** | {len(everything)} | **{len(everything) / r['wall']:.1f}** | "
        f"{percentile(everything, 50):.0f} | {percentile(everything, 95):.0f} | "
        f"{percentile(everything, 99):.0f} | **{errors}** |"
    )
    return "\n".join(lines)


def failure_text(t: Tally, keep_alive: int) -> str:
    """The requests that got no answer, with how long their connection had been idle."""
    if not t.failures:
        return "Requests without an answer: none."
    reasons = Counter(
        "connection reset by peer"
        if "Connection reset by peer" in exc
        else "closed without an answer"
        if "RemoteDisconnected" in exc
        else "timed out"
        if "Timeout" in exc
        else exc[:80]
        for _, exc, _ in t.failures
    )
    idle = sorted(i for _, _, i in t.failures if i is not None)
    fresh = len(t.failures) - len(idle)
    race = all("Connection reset" in exc and i is not None for _, exc, i in t.failures)
    note = (
        " Each was sent on a kept-alive connection about when gunicorn's keep-alive for it ran out"
        " (the client's idle time differs from the server's by the time either side waits for the"
        " CPU): gunicorn closes the connection with the request unread and the client gets a"
        " reset; no request on a new connection failed. Browsers resend such a"
        " request; `requests` and many other HTTP libraries do not, and a reverse proxy that keeps"
        " connections to gunicorn open for longer than its keep-alive meets the same race (compare"
        " `--keep-alive 75`)."
        if race
        else ""
    )
    return (
        f"Requests without an answer: {len(t.failures)} ("
        + ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        + f"); {len(idle)} of them sent on a kept-alive connection "
        + (f"{', '.join(f'{i:.2f}' for i in idle)} s after its previous answer" if idle else "")
        + f", {fresh} on a new connection (gunicorn's keep-alive: {keep_alive} s)."
        + note
    )


def summary(mode: str, r: dict[str, Any], keep_alive: int) -> tuple[str, bool]:
    t: Tally = r["tally"]
    c = r["checks"]
    errors = sum(sum(v.values()) for v in t.errors.values())
    once = exactly_once(c)
    kinds = "; ".join(f"{k}: {dict(v)}" for k, v in t.errors.items() if v) or "none"
    drain = f"; the queue left at the end took {r['drain']:.1f} s to drain" if mode == "worker" else ""
    text = f"""
Accepted submissions: {c["accepted"]} ({c["accepted"] / r["wall"]:.1f}/s); stored: {c["stored"]}, of them
for accepted links {c["stored_for_accepted"]}; links marked used {c["links_used"]}; sessions stored twice
{c["stored_twice"]}; stored for links never posted or refused {c["stored_unposted"] + c["stored_refused"]};
without all 12 answers {c["incomplete"]}; posts without an answer {c["uncertain"]}. Double clicks:
{t.doubles}, of which {t.doubles_ok} had exactly one post accepted and the other shown the thank-you page.
**Every accepted submission stored exactly once: {"yes" if once else "NO"}.**
Errors by kind: {kinds}. {failure_text(t, keep_alive)}
Episodes whose stored flags and analysis snapshot are at least as new as their last answers: {r["analysed"][0]} / {r["analysed"][1]}
(stale: {r["analysed"][1] - r["analysed"][0]}){drain}.
Reads of patient data answered (sign-in and warm-up included): {c["reads"]}; access entries in the
audit trail: {c["audited"]} (missing {c["audit_missing"]}, unexpected {c["audit_extra"]}).
Wall time {r["wall"]:.1f} s; sign-in (password and code) before the timed run, median
{percentile([x * 1000 for x in r["sign_ins"]], 50):.0f} ms; load average {r["load"][0]:.2f} before and
{r["load"][1]:.2f} at the end.
"""
    audited = c["audit_missing"] == c["audit_extra"] == 0
    analysed = r["analysed"][0] == r["analysed"][1]
    return text, once and errors == 0 and t.links_short == 0 and analysed and audited


MODE_TITLES = {
    "immediate": "Analysis in the request (immediate task backend, the default)",
    "worker": "Analysis by a database task worker (`TASKS_BACKEND=django_tasks_db.DatabaseBackend`, "
    "one `db_worker` running during the load)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (one therapist each)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--patients", type=int, default=25, help="patients per therapist")
    parser.add_argument("--new-sessions", type=int, default=3, help="form links per patient")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--mode", choices=["immediate", "worker", "both"], default="both")
    parser.add_argument(
        "--keep-alive",
        type=int,
        default=KEEP_ALIVE,
        help="gunicorn --keep-alive seconds (default: as docs/operations.md sets it; gunicorn's own is 2)",
    )
    parser.add_argument("--quick", action="store_true", help="a ~10 s smoke run; does not write the doc")
    parser.add_argument(
        "--instances", type=int, default=1, help="scale-out: this many gunicorn instances, against one"
    )
    parser.add_argument("--rq-workers", type=int, default=2, help="RQ workers with --instances")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.duration, args.patients, args.new_sessions = 6, 10, 8, 3
    command = " ".join(["bench/load.py", *sys.argv[1:]])
    if args.instances > 1:
        scaled_main(args, command)
        return
    modes = ["immediate", "worker"] if args.mode == "both" else [args.mode]
    sections, verdicts = [], []
    began = time.perf_counter()
    for mode in modes:
        result = run_mode(mode, args)
        text, ok = summary(mode, result, args.keep_alive)
        verdicts.append(ok)
        sections.append(f"### {MODE_TITLES[mode]}\n\n{table(mode, result)}\n{text}")
        if result["tally"].samples:
            print(mode, "unexpected answers:", *result["tally"].samples[:10], sep="\n  ")
        for kind, exc, idle in result["tally"].failures:
            print(f"{mode}: no answer to {kind}: {exc}; idle before: {idle}")
        if result["tally"].links_short:
            print(
                mode,
                result["tally"].links_short,
                "form actions skipped (no links left): raise --new-sessions",
            )
    minutes = max(1, round((time.perf_counter() - began) / 60))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mix = ", ".join(
        f"{name} {weight:.0f}%"
        for name, weight in (
            ("caseload page", ACTIONS["caseload"]),
            ("patient page", ACTIONS["patient"]),
            ("a patient's form (open, post, thank-you page)", ACTIONS["form"]),
            ("an API read", sum(ACTIONS[k] for k in API)),
        )
    )
    doc = f"""
## Mixed load over HTTP (`bench/load.py`)

Measured {now} on {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}.
**The load clients, gunicorn (gthread, {args.workers} workers x {args.threads} threads, keep-alive
{args.keep_alive} s) and PostgreSQL all run on the same machine** and talk over loopback, so the clients' own CPU time
(Python `requests` in {args.clients} threads) is taken from the same {os.cpu_count()} cores the server has.

{args.clients} concurrent clients for {args.duration:.0f} s, each sending its next request as soon as the
last is answered (no pauses: the server is saturated, so latency here is mostly queueing).
Each client is one therapist of one clinic ({args.patients} patients each, {PRIOR_SESSIONS} earlier
sessions per patient, flags stored), from an address of its own (X-Forwarded-For through one
trusted proxy hop, as behind the load balancer), signs in over HTTP with password and
authenticator code and makes one uncounted warm-up round, then repeatedly picks at random: {mix}. A patient opens
the next unused link of that therapist's patients, posts the 12 answers and follows the
redirect; one link in {DOUBLE_EVERY} is posted twice at the same moment from two connections (a
double click). API reads use the therapist's token (`Authorization: Bearer`). A client keeps its
connections open between requests (one for the pages, one for the API), as browsers and HTTP
libraries do; each patient's form has a connection of its own. Latency is per
request, from sending it to the last byte of the answer; "per second" is the count over the
wall time of the run; "errors" counts any other status than expected (200; 302 to the
thank-you page for a posted form; 200 or 302 for each post of a double click, exactly one of
them 302) and any request without an answer. After the run the database is checked: one
stored response, with 12 answers, for every submission the server accepted (302), and none for
any other link.

{chr(10).join(sections)}
Verdict (no errors, every accepted submission stored exactly once, no stale episode (every
answered session in its episode's stored analysis), every read in the audit trail once):
**{"passed" if all(verdicts) else "FAILED"}**.
Reproduce: `.venv/bin/python {command}` ({minutes} minute{"" if minutes == 1 else "s"} in all: each
configuration seeds a database, and the static files are collected first if they changed; `--quick` for a
short smoke run that does not write this page).
"""
    print(doc)
    if not args.quick:
        write_section("load", doc)
    if not all(verdicts):
        sys.exit(1)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
