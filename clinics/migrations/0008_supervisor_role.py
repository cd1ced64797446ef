"""The supervisor role and its assigned therapists (issue 16, item 7).

A ``SupervisorAssignment`` joins two memberships that must be of the same clinic. A check
constraint cannot look into another row, so a trigger refuses a row whose two memberships are of
different clinics (PostgreSQL and SQLite alike); the access rule matches both clinics again.
"""

import django.db.models.deletion
from django.db import migrations, models

import clinics.models

MESSAGE = "a supervisor and the therapists assigned to them must work in the same clinic"
DIFFERENT_CLINICS = (
    "(SELECT clinic_id FROM clinics_membership WHERE id = NEW.supervisor_id) IS DISTINCT FROM "
    "(SELECT clinic_id FROM clinics_membership WHERE id = NEW.therapist_id)"
)
PG_UP = [
    f"""CREATE OR REPLACE FUNCTION bordin_supervision_same_clinic() RETURNS trigger AS $$
    BEGIN
        IF {DIFFERENT_CLINICS} THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER clinics_supervision_same_clinic
        BEFORE INSERT OR UPDATE ON clinics_supervisorassignment
        FOR EACH ROW EXECUTE FUNCTION bordin_supervision_same_clinic()""",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS clinics_supervision_same_clinic ON clinics_supervisorassignment",
    "DROP FUNCTION IF EXISTS bordin_supervision_same_clinic()",
]
# SQLite has no IS DISTINCT FROM: IS NOT compares NULLs the same way.
SQLITE_UP = [
    f"""CREATE TRIGGER clinics_supervision_same_clinic_{event.lower()}
    BEFORE {event} ON clinics_supervisorassignment
    WHEN {DIFFERENT_CLINICS.replace("IS DISTINCT FROM", "IS NOT")}
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}');
    END"""
    for event in ("INSERT", "UPDATE")
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS clinics_supervision_same_clinic_insert",
    "DROP TRIGGER IF EXISTS clinics_supervision_same_clinic_update",
]
STATEMENTS = {"postgresql": (PG_UP, PG_DOWN), "sqlite": (SQLITE_UP, SQLITE_DOWN)}


def forwards(apps, schema_editor):
    for statement in STATEMENTS.get(schema_editor.connection.vendor, ([], []))[0]:
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    for statement in STATEMENTS.get(schema_editor.connection.vendor, ([], []))[1]:
        schema_editor.execute(statement, params=None)


ROLES = [("admin", "Clinic admin"), ("therapist", "Therapist"), ("supervisor", "Supervisor")]


class Migration(migrations.Migration):
    dependencies = [("clinics", "0007_session_external_id")]

    operations = [
        migrations.RemoveConstraint(model_name="membership", name="membership_role_valid"),
        migrations.AlterField(
            model_name="membership", name="role", field=models.CharField(choices=ROLES, max_length=16)
        ),
        migrations.AlterField(
            model_name="staffinvitation", name="role", field=models.CharField(choices=ROLES, max_length=16)
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.CheckConstraint(
                condition=models.Q(("role__in", ["admin", "therapist", "supervisor"])),
                name="membership_role_valid",
            ),
        ),
        migrations.CreateModel(
            name="SupervisorAssignment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "supervisor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="supervising",
                        to="clinics.membership",
                    ),
                ),
                (
                    "therapist",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="supervised_by",
                        to="clinics.membership",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("supervisor", "therapist"), name="supervision_once_per_pair"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("supervisor", models.F("therapist")), _negated=True),
                        name="supervision_not_of_oneself",
                    ),
                ],
            },
            bases=(clinics.models.ClinicScoped, models.Model),
        ),
        migrations.RunPython(forwards, backwards),
    ]
