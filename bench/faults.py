"""Fault drills: patients keep submitting while something breaks; nothing may be lost or doubled.

    .venv/bin/python bench/faults.py [--drill all|gunicorn|postgres|redis|worker] [--quick]

Run by hand, not by the test suite. Everything stays on loopback and every wait is bounded.
Each drill starts from a fresh database with patients who have 12 earlier sessions, gives each
one new form link, and lets N concurrent patients post their forms while the fault happens:

- ``gunicorn``: gunicorn workers are killed with SIGKILL while the forms are being posted;
- ``postgres``: PostgreSQL is restarted in the middle of the load;
- ``redis``: Redis is stopped while the RQ task backend is configured (and started again after);
- ``worker``: the database task worker is killed with SIGKILL in the middle of analysis jobs.

A patient does what a patient would: a post that is not answered, or answered with anything but
the thank-you page (the calm "not saved yet" page, an error), is sent again with the same answers
after a short pause, until the thank-you page (or "already received") appears or a deadline
passes. Afterwards the queue is drained and the sweep runs (``manage.py analyse_stale``, as cron
would), and the database is checked: for every link, one stored response with its 12 answers;
none lost (thank-you page seen, nothing stored), none doubled; no episode whose stored flags are
older than its answers.

PostgreSQL and Redis are private instances started for the drills (``initdb`` and
``redis-server`` on free loopback ports, removed at the end), so restarting or stopping them
disturbs no other user of this machine; the binaries are the machine's own (PostgreSQL 15).
Figures go to docs/performance.md (section ``faults``) unless ``--quick``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _server
from bench._server import ROOT, free_port, fresh_database, gunicorn, percentile, server_env, write_section
from bench.submit import seed

THANKS = b"Your answers have been received"
NOT_SAVED = b"Your answers are not saved yet"
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
RQ_BACKEND = "django_tasks_rq.RQBackend"
DB_BACKEND = "django_tasks_db.DatabaseBackend"


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port (trust authentication)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bordin-drill-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    *(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"),
                    *("-E", "UTF8", "--locale=C", "--no-sync", "-N"),
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=200"
        subprocess.run(
            _as_postgres(
                [
                    *(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log")),
                    *("-o", options, "-w", "-t", str(int(timeout)), *args),
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=timeout + 10,
        )

    def start(self) -> None:
        self.pg_ctl("start")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")

    def remove(self) -> None:
        with suppress(subprocess.SubprocessError, OSError):
            self.pg_ctl("stop", "-m", "immediate", timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A throwaway Redis (no persistence, as a queue that loses its jobs when it stops)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", tempfile.gettempdir()),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            )
            if ping.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def wait_for_worker(self, limit: float = 120) -> None:
        """Until an RQ worker has registered (so that it takes jobs before the fault)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            workers = subprocess.run(
                ["redis-cli", "-p", str(self.port), "scard", "rq:workers"], capture_output=True, check=False
            )
            if workers.stdout.strip() not in (b"", b"0"):
                return
            time.sleep(0.2)
        raise RuntimeError("no RQ worker registered")

    def warm_up(self, url: str, env: dict[str, str], limit: float = 120) -> None:
        """One analysis job through the queue before the load, as a worker that has been running a
        while would have done (the first job pays for importing the analysis libraries)."""
        job = subprocess.run(
            [
                *(sys.executable, "manage.py", "shell", "-v0", "-c"),
                "from monitoring import tasks; print(tasks.episodes_analyse.enqueue([1]).id)",
            ],
            cwd=ROOT,
            env=server_env(url, **env),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.split()[-1]
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            status = subprocess.run(
                ["redis-cli", "-p", str(self.port), "hget", f"rq:job:{job}", "status"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if status in ("finished", "failed"):
                return
            time.sleep(0.2)
        raise RuntimeError("the warm-up job did not finish")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None


def wait_for_progress(stop: threading.Event, seen: Patients, count: int) -> bool:
    """Until ``count`` patients are done (True), or the load ended first (False)."""
    while not stop.is_set():
        with seen.lock:
            if len(seen.outcome) >= count:
                return True
        stop.wait(0.05)
    return False


def worker_pids(master: int) -> list[int]:
    """The child processes of ``master`` (gunicorn's workers), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return pids


@dataclass
class Patients:
    """What the patients saw."""

    outcome: dict[str, str] = field(default_factory=dict)  # token -> "accepted" | "gave up"
    attempts: Counter[str] = field(default_factory=Counter)  # kind of answer -> count
    first_try: int = 0
    seconds: list[float] = field(default_factory=list)  # from the first post to the thank-you page
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str) -> None:
        with self.lock:
            self.attempts[kind] += 1


def run_patients(
    base: str,
    work: list[tuple[str, dict[str, str]]],
    clients: int,
    deadline_s: float,
    seen: Patients | None = None,
) -> tuple[Patients, float]:
    """Every patient posts until they see the thank-you page or the deadline passes."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    seen = seen or Patients()
    queue = list(work)
    deadline = time.monotonic() + deadline_s

    def submit(token: str, data: dict[str, str]) -> None:
        body = urllib.parse.urlencode({**data, "lang": "en"})
        tries, began = 0, time.perf_counter()
        while time.monotonic() < deadline:
            tries += 1
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                conn.request(
                    "POST", f"/f/{token}/", body, {"Content-Type": "application/x-www-form-urlencoded"}
                )
                response = conn.getresponse()
                page = response.read()
                if response.status == 302:
                    conn.request("GET", response.getheader("Location") or f"/f/{token}/done/")
                    done = conn.getresponse()
                    page = done.read()
                    if done.status == 200 and THANKS in page:
                        seen.note("thank-you page")
                        break
                    seen.note(f"stored, then thank-you page HTTP {done.status}")
                elif response.status == 200 and THANKS in page:
                    seen.note("already received (thank-you page)")
                    break
                elif response.status == 503 and NOT_SAVED in page:
                    seen.note("calm 503, answers kept")
                else:
                    seen.note(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException):
                seen.note("no answer (connection lost)")
            finally:
                conn.close()
            time.sleep(0.3 + random.random() * 0.4)  # a patient pressing again
        else:
            with seen.lock:
                seen.outcome[token] = "gave up"
            return
        with seen.lock:
            seen.outcome[token] = "accepted"
            seen.first_try += tries == 1
            seen.seconds.append(time.perf_counter() - began)

    def client() -> None:
        while True:
            with seen.lock:
                if not queue:
                    return
                token, data = queue.pop()
            submit(token, data)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen, time.perf_counter() - began


def check(work: list[tuple[str, dict[str, str]]], seen: Patients) -> dict[str, int]:
    """The database against what the patients saw."""
    from django.db import connections
    from django.db.models import Count

    from clinics.tokens import token_hash
    from monitoring.models import Invitation, Response

    connections.close_all()  # the server may have restarted under this process's connection
    session_of = dict(
        Invitation.objects.filter(token_hash__in=[token_hash(t) for t, _ in work]).values_list(
            "token_hash", "session_id"
        )
    )
    counts = dict(
        Response.objects.filter(rater="patient", source="link")
        .values("session")
        .annotate(n=Count("id"))
        .values_list("session", "n")
    )
    whole = set(
        Response.objects.filter(rater="patient", source="link")
        .annotate(n=Count("answers"))
        .filter(n=12)
        .values_list("session", flat=True)
    )
    sessions = {t: session_of[token_hash(t)] for t, _ in work}
    accepted = [t for t, o in seen.outcome.items() if o == "accepted"]
    return {
        "submissions": len(work),
        "accepted": len(accepted),
        "stored_once": sum(1 for s in sessions.values() if counts.get(s) == 1 and s in whole),
        "lost": sum(1 for t in accepted if counts.get(sessions[t], 0) == 0),
        "doubled": sum(1 for n in counts.values() if n > 1),
        "incomplete": sum(1 for s in counts if s not in whole),
        "gave_up": len(work) - len(accepted),
        "stored_untold": sum(
            1 for t, o in seen.outcome.items() if o != "accepted" and counts.get(sessions[t])
        ),
    }


def stale_count() -> int:
    from django.db import connections

    from monitoring.flags.selectors import episodes_stale

    connections.close_all()
    return len(episodes_stale())


def sweep(url: str, **env: str) -> str:
    """The catch-up, as cron runs it."""
    done = subprocess.run(
        [sys.executable, "manage.py", "analyse_stale"],
        cwd=ROOT,
        env=server_env(url, **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return (done.stdout + done.stderr).strip().splitlines()[-1] if (done.stdout + done.stderr).strip() else ""


@contextmanager
def background(target: Any, *args: Any) -> Any:
    """Run ``target(stop_event, *args)`` in a thread for the duration of the block."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop, *args), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)


# --- the drills ------------------------------------------------------------------------------


def drill_gunicorn(url: str, work: list, args: argparse.Namespace) -> dict[str, Any]:
    """SIGKILL of gunicorn workers while the patients post (analysis in the request)."""
    started: list[subprocess.Popen[bytes]] = []
    kills: list[int] = []

    def killer(stop: threading.Event) -> None:
        time.sleep(0.5)
        while not stop.is_set() and len(kills) < args.kills:
            pids = worker_pids(started[0].pid)
            if pids:
                victim = random.choice(pids)
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                except ProcessLookupError:
                    pass
            stop.wait(args.kill_every)

    with gunicorn(url, workers=4, threads=4, started=started) as base, background(killer):
        seen, wall = run_patients(base, work, args.clients, args.deadline)
    stale = stale_count()
    return {
        "seen": seen,
        "wall": wall,
        "fault": f"{len(kills)} workers killed (SIGKILL, one every {args.kill_every} s)",
        "stale_before": stale,
        "sweep": sweep(url),
    }


def drill_postgres(url: str, work: list, args: argparse.Namespace, pg: PrivatePostgres) -> dict[str, Any]:
    """PostgreSQL restarted (fast shutdown, start) while the patients post."""
    downtime: list[float] = []
    seen, after = Patients(), round(args.fault_at * len(work))

    def restarter(stop: threading.Event) -> None:
        if not wait_for_progress(stop, seen, after):
            return
        began = time.perf_counter()
        pg.restart()
        downtime.append(time.perf_counter() - began)

    with gunicorn(url, workers=4, threads=4) as base, background(restarter):
        seen, wall = run_patients(base, work, args.clients, args.deadline, seen)
    stale = stale_count()
    return {
        "seen": seen,
        "wall": wall,
        "fault": f"PostgreSQL restarted (fast shutdown) after {after} of {len(work)} patients were done; "
        f"down {downtime[0]:.1f} s"
        if downtime
        else "PostgreSQL NOT restarted (the load ended first)",
        "stale_before": stale,
        "sweep": sweep(url),
    }


def drill_redis(url: str, work: list, args: argparse.Namespace) -> dict[str, Any]:
    """Redis stopped while the RQ backend is configured; started again after the load."""
    redis = PrivateRedis()
    redis.start()
    env = {"TASKS_BACKEND": RQ_BACKEND, "REDIS_URL": redis.url}
    # SimpleWorker runs each job in the worker process; RQ's default forks a child per job, which
    # imports the analysis libraries again every time (about a second a job; docs/operations.md).
    rq_worker = [sys.executable, "manage.py", "rqworker", "default", "--job-class", "django_tasks_rq.Job"]
    rq_worker += ["--worker-class", "rq.worker.SimpleWorker"]
    worker = subprocess.Popen(
        rq_worker, cwd=ROOT, env=server_env(url, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    redis.wait_for_worker()
    redis.warm_up(url, env)
    down: list[float] = []
    seen, after = Patients(), round(args.fault_at * len(work))

    def stopper(stop: threading.Event) -> None:
        if not wait_for_progress(stop, seen, after):
            return
        redis.stop()
        down.append(time.perf_counter())

    try:
        with gunicorn(url, workers=4, threads=4, **env) as base:
            with background(stopper):
                seen, wall = run_patients(base, work, args.clients, args.deadline, seen)
            was_down = time.perf_counter() - down[0] if down else 0.0
        redis.start()  # back (empty: the jobs queued before the stop are gone with it)
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        # The worker died with Redis (a supervisor restarts it): drain what is queued now.
        subprocess.run(
            [*rq_worker, "--burst"],
            cwd=ROOT,
            env=server_env(url, **env),
            timeout=600,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stale = stale_count()
        swept = sweep(url, **env)
    finally:
        if worker.poll() is None:
            worker.kill()
        redis.stop()
    return {
        "seen": seen,
        "wall": wall,
        "fault": f"Redis stopped after {after} of {len(work)} patients were done, for {was_down:.1f} s "
        "(until the load ended)"
        if down
        else "Redis NOT stopped (the load ended first)",
        "stale_before": stale,
        "sweep": swept,
    }


def drill_worker(url: str, work: list, args: argparse.Namespace) -> dict[str, Any]:
    """The database task worker killed (SIGKILL) in the middle of analysis jobs, and restarted."""
    from django.db import connections
    from django_tasks_db.models import DBTaskResult

    env = {"TASKS_BACKEND": DB_BACKEND}
    command = [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--no-startup-delay", "-v0"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=server_env(url, **env))]
    kills: list[int] = []

    orphans: set[object] = set()  # tasks a killed worker left RUNNING

    def killer(stop: threading.Event) -> None:
        try:
            while not stop.is_set() and len(kills) < args.kills:
                running = set(DBTaskResult.objects.filter(status="RUNNING").values_list("id", flat=True))
                if running - orphans:  # the live worker is in the middle of a job
                    workers[-1].send_signal(signal.SIGKILL)
                    workers[-1].wait(timeout=30)
                    kills.append(workers[-1].pid)
                    orphans.update(DBTaskResult.objects.filter(status="RUNNING").values_list("id", flat=True))
                    stop.wait(0.5)  # a supervisor restarts it
                    workers.append(subprocess.Popen(command, cwd=ROOT, env=server_env(url, **env)))
                stop.wait(0.02)
        finally:
            connections.close_all()

    try:
        with background(killer):
            with gunicorn(url, workers=4, threads=4, **env) as base:
                seen, wall = run_patients(base, work, args.clients, args.deadline)
            # The worker works through the queue (and is still killed now and then), then stops.
            limit = time.monotonic() + 600
            while DBTaskResult.objects.filter(status="READY").exists() and time.monotonic() < limit:
                time.sleep(0.5)
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=60)
    orphaned = DBTaskResult.objects.filter(status="RUNNING").count()
    stale = stale_count()
    return {
        "seen": seen,
        "wall": wall,
        "fault": f"task worker killed {len(kills)} times mid-job (SIGKILL) and restarted; "
        f"{orphaned} jobs left RUNNING by the killed workers",
        "stale_before": stale,
        "sweep": sweep(url, **env),
    }


DRILLS = {
    "gunicorn": ("gunicorn workers killed during the load", "immediate (in the request)"),
    "postgres": ("PostgreSQL restarted mid-load", "immediate (in the request)"),
    "redis": ("Redis stopped, RQ backend configured", "RQ worker"),
    "worker": ("task worker killed mid-job", "database worker (`db_worker`)"),
}


def run_drill(name: str, args: argparse.Namespace, pg: PrivatePostgres) -> dict[str, Any]:
    print(f"[{name}] seeding", flush=True)
    with fresh_database(f"bordin_drill_{os.getpid()}") as url:
        work = seed(url, args.patients, 1)
        print(f"[{name}] {len(work)} patients post their forms ({args.clients} at a time)", flush=True)
        if name == "gunicorn":
            result = drill_gunicorn(url, work, args)
        elif name == "postgres":
            result = drill_postgres(url, work, args, pg)
        elif name == "redis":
            result = drill_redis(url, work, args)
        else:
            result = drill_worker(url, work, args)
        result["checks"] = check(work, result["seen"])
        result["stale_after"] = stale_count()
        from django.db import connections

        connections.close_all()
    print(
        f"[{name}] {result['wall']:.1f} s; {result['fault']}; {result['checks']}; stale {result['stale_before']} -> "
        f"{result['stale_after']}; sweep: {result['sweep']}; {dict(result['seen'].attempts)}",
        flush=True,
    )
    return result


def passed(r: dict[str, Any]) -> bool:
    c = r["checks"]
    return (
        c["accepted"] == c["submissions"] == c["stored_once"]
        and c["lost"] == c["doubled"] == c["incomplete"] == 0
        and r["stale_after"] == 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drill", choices=["all", *DRILLS], default="all")
    parser.add_argument("--patients", type=int, default=300, help="patients, one form link each")
    parser.add_argument("--clients", type=int, default=50, help="patients posting at the same time")
    parser.add_argument("--deadline", type=float, default=180, help="seconds a patient keeps trying")
    parser.add_argument("--kills", type=int, default=8, help="SIGKILLs per drill (gunicorn, worker)")
    parser.add_argument("--kill-every", type=float, default=1.5, help="seconds between gunicorn kills")
    parser.add_argument(
        "--fault-at",
        type=float,
        default=1 / 3,
        help="share of patients done when the fault comes (postgres, redis)",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run; does not write the doc")
    args = parser.parse_args()
    if args.quick:
        args.patients, args.clients, args.kills = 60, 20, 3
    names = list(DRILLS) if args.drill == "all" else [args.drill]
    pg = PrivatePostgres()
    try:
        pg.start()
        _server.PG = pg.url  # fresh_database and the drills use the private cluster
        results = {name: run_drill(name, args, pg) for name in names}
    finally:
        pg.remove()

    rows = []
    for name, r in results.items():
        c, seen = r["checks"], r["seen"]
        retries = sum(seen.attempts.values()) - c["accepted"]
        waits = f"{percentile(seen.seconds, 50):.2f} / {max(seen.seconds, default=float('nan')):.1f}"
        rows.append(
            f"| {DRILLS[name][0]} | {r['fault']} | {DRILLS[name][1]} | {c['submissions']} | {c['accepted']} | "
            f"{c['stored_once']} | {c['lost']} | {c['doubled']} | {retries} | {waits} | {r['stale_before']} | "
            f"{r['stale_after']} | {'passed' if passed(r) else 'FAILED'} |"
        )
    answers = "\n".join(
        f"- {DRILLS[name][0]}: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(r["seen"].attempts.items(), key=lambda kv: -kv[1]))
        + f'; sweep: "{r["sweep"]}".'
        for name, r in results.items()
    )
    table = f"""
## Fault drills (`bench/faults.py`)

Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on {os.cpu_count()} cores. gunicorn (gthread,
4 workers x 4 threads), a private PostgreSQL 15 cluster and, for the RQ drill, a private Redis, all
on loopback. Each drill: a fresh database, {args.patients} patients with 12 earlier sessions and one
new form link each, {args.clients} patients posting at a time while the fault happens. A patient who
does not get the thank-you page (no answer, an error, the calm "not saved yet" page) sends the same
answers again after 0.3 to 0.7 s, for at most {args.deadline:.0f} s. Afterwards the queue is drained,
the sweep runs (`manage.py analyse_stale`, as cron would) and the database is checked.

| drill | fault | analysis runs | submissions | accepted (thank-you page seen) | stored once | lost | doubled | patient resends | to the thank-you page, p50 / max (s) | stale episodes before the sweep | stale episodes after recovery | verdict |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

"Lost" counts links whose patient saw the thank-you page without a stored response; "doubled",
sessions with more than one patient response; "stale", episodes with a session of patient answers
missing from their stored analysis (flags older than the answers). Stale episodes before the sweep
are expected: an analysis cut off after its answers were committed (a killed gunicorn worker, the
database going away), jobs lost with a Redis that does not persist and none queued while it was
down, jobs killed mid-run; the sweep is what brings them to 0. What the patients' posts got:

{answers}

Reproduce: `.venv/bin/python bench/faults.py` (a few minutes; `--drill NAME` for one, `--quick` for a
smoke run that does not write this page). Procedure and what to expect: docs/operations.md.
"""
    print(table)
    if not args.quick and args.drill == "all":
        write_section("faults", table)
    if not all(passed(r) for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
