# The patient's optional message to the therapist, stored once per form link (issue 16, item 4).
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clinics", "0007_session_external_id"),
        ("monitoring", "0011_analysis_snapshot"),
    ]

    operations = [
        migrations.CreateModel(
            name="PatientMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                ),
                ("text", models.TextField(max_length=1000)),
                ("submitted_at", models.DateTimeField()),
                (
                    "invitation",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="patient_message",
                        to="monitoring.invitation",
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="patient_messages",
                        to="clinics.session",
                    ),
                ),
            ],
            options={
                "ordering": ["submitted_at"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("text", ""), _negated=True), name="patient_message_not_empty"
                    )
                ],
            },
        ),
    ]
