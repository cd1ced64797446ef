"""The audit trail is append-only, enforced by the database as well as the application.

PostgreSQL (production): a trigger refuses every UPDATE and DELETE of a row. SQLite: a trigger
refuses UPDATE; a DELETE is refused by the application (monitoring.security.signals), because Django's
test flush empties SQLite tables with DELETE. A deployment can go further and grant the
application's database role only INSERT and SELECT on auditlog_logentry (docs/security.md).
"""

from django.db import migrations

PG_UP = [
    """CREATE OR REPLACE FUNCTION bordin_audit_immutable() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit entries cannot be changed or deleted'
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER auditlog_logentry_immutable
        BEFORE UPDATE OR DELETE ON auditlog_logentry
        FOR EACH ROW EXECUTE FUNCTION bordin_audit_immutable()""",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS auditlog_logentry_immutable ON auditlog_logentry",
    "DROP FUNCTION IF EXISTS bordin_audit_immutable()",
]
SQLITE_UP = ["""
CREATE TRIGGER auditlog_logentry_immutable BEFORE UPDATE ON auditlog_logentry
BEGIN
    SELECT RAISE(ABORT, 'audit entries cannot be changed or deleted');
END
"""]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS auditlog_logentry_immutable"]
STATEMENTS = {"postgresql": (PG_UP, PG_DOWN), "sqlite": (SQLITE_UP, SQLITE_DOWN)}


def forwards(apps, schema_editor):
    for statement in STATEMENTS.get(schema_editor.connection.vendor, ([], []))[0]:
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    for statement in STATEMENTS.get(schema_editor.connection.vendor, ([], []))[1]:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0003_api_token"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
