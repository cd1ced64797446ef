"""An index for a clinic's audit trail (``selectors.audit_entries``: the entries whose
``additional_data`` names the clinic, newest first). PostgreSQL only, the production database;
every read of patient data adds an entry, so the trail grows by thousands of rows a day."""

from django.db import migrations

UP = (
    'CREATE INDEX IF NOT EXISTS bordin_audit_clinic_time ON auditlog_logentry '
    '((additional_data -> \'clinic\'), "timestamp" DESC, id DESC)'
)
DOWN = "DROP INDEX IF EXISTS bordin_audit_clinic_time"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UP, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0004_audit_trail_immutable")]

    operations = [migrations.RunPython(forwards, backwards)]
