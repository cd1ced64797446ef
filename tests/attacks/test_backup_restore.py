"""Issue 14, item 9: backups that restore (PostgreSQL only).

The procedure of docs/operations.md, as a drill: ``pg_dump --format=custom`` of a database with
patients, responses, flags and audit entries, ``pg_restore`` into a fresh database, and then every
table's rows compared (count and a checksum of every row), the migrations at the same state, and
the audit trail's immutability trigger (migration 0004) present and still refusing changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date

import psycopg
import pytest
from auditlog.models import LogEntry
from django.db import connection

from clinics.models import Session
from monitoring.collection.responses import response_create
from monitoring.flags.services import episodes_flags_refresh
from monitoring.models import Answer, EpisodeAnalysis, Flag, Response
from monitoring.security.audit import entry_write

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _conninfo(name: str) -> str:
    s = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=name,
        host=s["HOST"] or None,
        port=str(s["PORT"]) if s["PORT"] else None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
    )


def _fingerprints(conninfo: str) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: (rows, md5 of all rows in primary-key order)."""
    with psycopg.connect(conninfo) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
        ]
        result = {}
        for table in tables:
            count, digest = db.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \"{table}\" t"  # noqa: S608 - names from the catalogue
            ).fetchone()
            result[table] = (count, digest)
        return result


def _history(episode, instrument) -> None:
    """Ten sessions, steady and then a sharp drop: enough for the analysis to store flags."""
    for number in range(1, 11):
        value = 5 if number <= 8 else 1
        session = Session.objects.create(
            episode=episode, number=number, date=date(2026, 9, number), status=Session.Status.HELD
        )
        response_create(
            session=session, instrument=instrument, answers={n: value for n in range(1, 13)}, source="link"
        )


def test_a_dump_restores_every_response_flag_and_audit_entry_with_the_trail_still_immutable(
    episode, instrument, dana, clinic_a
):
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump and pg_restore: PostgreSQL only")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed")
    _history(episode, instrument)
    episodes_flags_refresh(episode_ids=[episode.pk])
    entry_write(
        instance=clinic_a, actor=dana, action=LogEntry.Action.ACCESS, text="drill", data={"event": "drill"}
    )
    assert Response.objects.count() == 10 and Answer.objects.count() == 120
    assert Flag.objects.exists() and EpisodeAnalysis.objects.get().flagged_through == 10
    assert LogEntry.objects.count() >= 11  # each stored response, and the read above

    source = connection.settings_dict["NAME"]
    restored = f"{source}_restored"[:63]
    env = {**os.environ, "PGPASSWORD": connection.settings_dict["PASSWORD"] or ""}
    dump = subprocess.run(
        ["pg_dump", "--format=custom", "--dbname", _conninfo(source)],
        capture_output=True,
        check=True,
        env=env,
        timeout=120,
    ).stdout
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{restored}"')
    try:
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", _conninfo(restored)],
            input=dump,
            capture_output=True,
            check=True,
            env=env,
            timeout=300,
        )
        before, after = _fingerprints(_conninfo(source)), _fingerprints(_conninfo(restored))
        assert after == before  # every table, every row: responses, answers, flags, audit, migrations
        for table in ("monitoring_response", "monitoring_answer", "monitoring_flag", "auditlog_logentry"):
            assert after[table][0] > 0, table

        with psycopg.connect(_conninfo(restored), autocommit=True) as db:
            triggers = db.execute(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = 'auditlog_logentry'::regclass AND NOT tgisinternal"
            ).fetchall()
            assert triggers == [("auditlog_logentry_immutable", "O")]
            for statement in (
                "UPDATE auditlog_logentry SET changes_text = 'x'",
                "DELETE FROM auditlog_logentry",
            ):
                with pytest.raises(
                    psycopg.errors.InsufficientPrivilege, match="cannot be changed or deleted"
                ):
                    db.execute(statement)
            assert (
                db.execute("SELECT count(*) FROM auditlog_logentry").fetchone()[0]
                == after["auditlog_logentry"][0]
            )
    finally:
        with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
