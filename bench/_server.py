"""Shared plumbing for the HTTP benchmarks: a fresh PostgreSQL database, a gunicorn server on
loopback, and a markdown section writer for docs/performance.md. Everything stays on this machine
(127.0.0.1) and every loop is bounded."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE = ROOT / "docs" / "performance.md"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BORDIN_TESTING", "DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="monitoring.settings",
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE="0",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """Create an empty PostgreSQL database, migrate it, drop it afterwards."""
    subprocess.run(
        ["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True
    )
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    url = f"{PG}/{name}"
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=server_env(url),
            check=True,
        )
        yield url
    finally:
        subprocess.run(
            ["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False
        )


def _static_collected() -> bool:
    manifest = ROOT / "var" / "staticfiles" / "staticfiles.json"
    sources = [p.stat().st_mtime for p in (ROOT / "static").rglob("*") if p.is_file()]
    return manifest.exists() and manifest.stat().st_mtime > max(sources)


#: gunicorn's keep-alive as docs/operations.md sets it: longer than any client's or proxy's idle
#: time, so that the client closes an idle connection first. With gunicorn's default (2 s) a request
#: sent on a connection just as the server closes it is lost (bench/load.py measured it).
KEEP_ALIVE = 75


@contextmanager
def gunicorn(
    database_url: str,
    *,
    workers: int = 2,
    threads: int = 4,
    keep_alive: int = KEEP_ALIVE,
    started: list[subprocess.Popen[bytes]] | None = None,
    **extra_env: str,
) -> Iterator[str]:
    """A gunicorn server on a free loopback port; yields its base URL. ``started`` receives the
    master process (bench/faults.py kills its workers)."""
    port = free_port()
    env = server_env(database_url, **extra_env)
    # Production settings serve hashed static files: build the manifest as a deployment would
    # (once: it takes over a minute on 2 cores, and is rebuilt when a file in static/ changes).
    if not _static_collected():
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "monitoring.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--keep-alive",
            str(keep_alive),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    if started is not None:
        started.append(process)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)  # noqa: S310 - loopback only
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def write_section(name: str, markdown: str) -> None:
    """Replace the section between <!-- bench:NAME:start --> and <!-- bench:NAME:end -->."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = PERFORMANCE.read_text() if PERFORMANCE.exists() else "# Performance\n"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    PERFORMANCE.write_text(text)
