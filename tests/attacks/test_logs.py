"""Finding 3 of issue 14, the log half: sending a link by email printed the patient's address and
the whole ``/f/<token>/`` URL (the console backend, now refused by ``check --deploy``:
test_deploy_checks.py), and gunicorn's access lines were plain text, not the JSON lines the docs
describe.

Proved through real processes: gunicorn started with the command line of docs/operations.md
(against the test settings and a throwaway SQLite database), and a link emailed under the
documented production variables to an SMTP server on loopback. Every line either writes is a JSON
object, and none holds a token, a password-reset key, an address or a search term.
"""

from __future__ import annotations

import email
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_settings import production_variables

ROOT = Path(__file__).resolve().parents[2]
PATIENT_EMAIL = "winifred.patient@mail.test"
SEARCH = "Winifred"

SETUP = f"""
from datetime import date
from django.contrib.auth.models import User
from clinics.models import Clinic, Episode, Patient, Session
from monitoring.collection.invitations import invitation_create
clinic = Clinic.objects.create(slug="logs", name="Logs Clinic")
therapist = User.objects.create_user("t@logs.test", "t@logs.test")
patient = Patient.objects.create(
    clinic=clinic, label="W.P.", therapist=therapist, contact_email="{PATIENT_EMAIL}"
)
episode = Episode.objects.create(patient=patient, therapist=therapist, started_on=date(2026, 9, 1))
session = Session.objects.create(episode=episode, number=1, date=date(2026, 9, 1), status="held")
print(invitation_create(session=session, created_by=therapist)[1])
"""

SEND = """
import logging
from monitoring.collection.invitations import invitation_send
from monitoring.models import Invitation
invitation_send(invitation=Invitation.objects.get(), channel="email")
logging.getLogger("monitoring").warning("the link was sent")
"""


def _env(**extra: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"BORDIN_TESTING", "DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
        and not k.startswith(("EMAIL_", "LOG_", "SMS_", "PYTEST_"))
    }
    return {**clean, **extra}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[tuple[dict[str, str], str]]:
    """A migrated throwaway SQLite database with one patient and one form link; the test settings'
    environment for it, and the link's token."""
    path = tmp_path_factory.mktemp("logs") / "db.sqlite3"
    env = _env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        BORDIN_TESTING="1",
        SECRET_KEY=secrets.token_urlsafe(50),  # one key: the link's token is derived from it
        DATABASE_URL=f"sqlite:///{path}",
    )
    migrated = _run("migrate", "--noinput", "-v0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    created = _run("shell", "-c", SETUP, env=env)
    assert created.returncode == 0, created.stderr
    yield env, created.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def documented_gunicorn(port: int) -> list[str]:
    """The gunicorn command line of docs/operations.md ("Serving"), bound to ``port`` and with one
    worker (the test's only change besides the address)."""
    text = (ROOT / "docs" / "operations.md").read_text()
    found = re.search(r"^\.venv/bin/gunicorn .*?(?<!\\)$", text.replace("\\\n", " "), re.M)
    assert found, "docs/operations.md lost its gunicorn command line"
    args = shlex.split(found.group(0))[1:]
    assert "--logger-class" in args and "--access-logfile" in args, args
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    args[args.index("--workers") + 1] = "1"
    return [sys.executable, "-m", "gunicorn", *args]


def _get(port: int, path: str, **headers: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_gunicorn_writes_json_lines_without_tokens(database, tmp_path):
    env, token = database
    port = _free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            documented_gunicorn(port), cwd=ROOT, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
    reset_key = "3-" + secrets.token_urlsafe(20)
    api_token = "bdn_" + secrets.token_urlsafe(24)
    requests = [
        ("/healthz", {}),
        (f"/f/{token}/", {}),
        (f"/f/{token}x/", {}),  # a mistyped link: Django logs the 404 with its path
        (f"/join/{token}/", {}),
        (f"/accounts/password/reset/key/{reset_key}/", {}),
        ("/api/v1/patients/", {"Authorization": f"Bearer {api_token}"}),
        (f"/patients/?q={SEARCH}", {}),  # a query string is never logged
        (f"/accounts/login/?next=/f/{token}/", {}),
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert _get(port, "/healthz") == 200
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.2)
        statuses = [_get(port, path, **headers) for path, headers in requests]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert statuses[:3] == [200, 200, 404] and statuses[5] == 401, statuses

    output = out.read_text() + err.read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line, gunicorn's own included, is one JSON object
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    for secret in (token, reset_key.split("-", 1)[1], api_token, SEARCH):
        assert secret not in output, secret

    access = [e for e in entries if e["logger"] == "gunicorn.access"]
    assert len(access) == 1 + len(requests)  # the first /healthz that answered, then each request
    for entry in access:
        assert entry["remote_addr"] == "127.0.0.1" and entry["method"] == "GET"
        assert isinstance(entry["status"], int) and isinstance(entry["duration_ms"], float)
    # Each request's line, with its status (a worker thread may write its line after the next
    # request's: the order of lines is not the order of requests).
    logged = sorted((e["path"], e["status"]) for e in access)
    expected = [
        "/healthz",
        "/healthz",
        "/f/[redacted]/",
        "/f/[redacted]/",
        "/join/[redacted]/",
        "/accounts/password/reset/key/[redacted]/",
        "/api/v1/patients/",
        "/patients/",
        "/accounts/login/",
    ]
    assert logged == sorted(zip(expected, [200, *statuses], strict=True))
    assert any(e["logger"] == "django.request" and e.get("path") == "/f/[redacted]/" for e in entries)
    assert any(e["logger"] == "gunicorn.error" and "Listening at" in e["message"] for e in entries)


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for Django's backend: every message is kept in ``server.messages``."""

    def handle(self) -> None:
        self.wfile.write(b"220 loopback\r\n")
        data: list[bytes] | None = None
        while line := self.rfile.readline():
            if data is not None:
                if line.rstrip(b"\r\n") == b".":
                    self.server.messages.append(b"".join(data))  # type: ignore[attr-defined]
                    data = None
                    self.wfile.write(b"250 kept\r\n")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                data = []
                self.wfile.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_emailing_a_link_in_production_logs_no_address_and_no_link(database, tmp_path):
    env, token = database
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        production = {
            **production_variables(tmp_path),
            "DATABASE_URL": env["DATABASE_URL"],
            "SECRET_KEY": env["SECRET_KEY"],
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(server.server_address[1]),
            "EMAIL_USE_TLS": "0",
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "LOG_LEVEL": "DEBUG",
        }
        result = _run(
            "shell", "-c", SEND, env=_env(DJANGO_SETTINGS_MODULE="monitoring.settings", **production)
        )
    finally:
        server.shutdown()
        server.server_close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The link went out by SMTP...
    (message,) = server.messages  # type: ignore[attr-defined]
    parsed = email.message_from_bytes(message)
    assert parsed["To"] == PATIENT_EMAIL
    body = parsed.get_payload(decode=True).decode()
    assert f"https://bordin.example.org/f/{token}/" in body
    # ...and the log, which works (the line the script logs is there, as JSON), holds neither.
    assert json.loads(output.strip().splitlines()[-1])["message"] == "the link was sent"
    for secret in (token, PATIENT_EMAIL, "winifred", "/f/"):
        assert secret not in output.lower(), secret
