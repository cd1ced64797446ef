# Recurring appointments and the patient's channel for form links (issue 16, item 5).
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import clinics.validation


class Migration(migrations.Migration):
    dependencies = [
        ("clinics", "0008_supervisor_role"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="form_channel",
            field=models.CharField(
                blank=True,
                choices=[
                    ("email", "Email"),
                    ("sms", "Text message"),
                    ("none", "None: in the clinic (tablet or QR code)"),
                ],
                help_text="How form links reach the patient. Empty: email if on file, else text message.",
                max_length=8,
            ),
        ),
        migrations.CreateModel(
            name="AppointmentSchedule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "repeat",
                    models.CharField(
                        choices=[
                            ("weekly", "Every week"),
                            ("fortnightly", "Every two weeks"),
                            ("dates", "On the dates listed"),
                        ],
                        max_length=12,
                    ),
                ),
                (
                    "starts_on",
                    models.DateField(
                        blank=True, null=True, validators=[clinics.validation.validate_plausible_date]
                    ),
                ),
                (
                    "ends_on",
                    models.DateField(
                        blank=True, null=True, validators=[clinics.validation.validate_plausible_date]
                    ),
                ),
                ("dates", models.JSONField(blank=True, default=list, help_text="ISO dates, for 'dates'.")),
                ("time", models.TimeField(help_text="When the appointments start (the clinic's time).")),
                ("done_through", models.DateField(blank=True, editable=False, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "patient",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="schedule",
                        to="clinics.patient",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("repeat__in", ["weekly", "fortnightly", "dates"])),
                        name="schedule_repeat_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("repeat", "dates"), ("starts_on__isnull", False), _connector="OR"
                        ),
                        name="schedule_repeat_has_start",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("ends_on__isnull", True),
                            ("starts_on__isnull", True),
                            ("ends_on__gte", models.F("starts_on")),
                            _connector="OR",
                        ),
                        name="schedule_ends_after_start",
                    ),
                ],
            },
        ),
    ]
