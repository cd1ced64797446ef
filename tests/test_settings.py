from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "BORDIN_TESTING",
            "DEBUG",
            "SECRET_KEY",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "monitoring.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_variables(tmp_path: Path) -> dict[str, str]:
    """The environment docs/operations.md documents for production (its production-variables
    block), with a real secret key and a throwaway SQLite database in place of the examples."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"<!-- production-variables[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/operations.md lost its production-variables block"
    variables = dict(line.split("=", 1) for line in block.group(1).splitlines() if "=" in line)
    return {
        **variables,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_variables(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_every_page_sends_a_strict_content_security_policy(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "camera=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_the_favicon_request_finds_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


@pytest.mark.parametrize(
    ("command", "backend"),
    [("db_worker", "django_tasks_db.DatabaseBackend"), ("rqworker", "django_tasks_rq.RQBackend")],
)
def test_a_task_worker_loads_the_analysis_before_its_first_job(command, backend):
    # RQ forks a process per job: loaded in the worker itself, the analysis (the rules' machine
    # code, scipy) is loaded once rather than in every job. `--help` stops after Django's setup.
    result = manage(command, "--help", DEBUG="1", LOG_FORMAT="plain", TASKS_BACKEND=backend)
    assert result.returncode == 0, result.stderr
    assert "task worker: analysis loaded in" in result.stderr


def test_other_commands_do_not_load_the_analysis():
    result = manage("check", DEBUG="1", LOG_FORMAT="plain")
    assert result.returncode == 0, result.stderr
    assert "analysis loaded" not in result.stderr


def test_a_failed_warm_up_is_logged_and_the_worker_starts_anyway(monkeypatch, caplog):
    from monitoring import apps
    from monitoring.analytics import analysis

    def broken() -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(analysis, "warm_up", broken)
    apps.warm_up_analysis("web worker")  # does not raise: the site still starts
    assert "web worker: the analysis could not be loaded in advance" in caplog.text
    assert "no space left on device" in caplog.text
