# Two perspectives (issue 16, item 8): a session the therapist rated well above the patient is
# stored as a flag, judged once per paired session.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0012_patient_message")]

    operations = [
        migrations.AddField(
            model_name="episodeanalysis",
            name="analysed_pairs",
            field=models.JSONField(
                default=list, help_text="Sessions both rated that the two-perspectives rule has judged."
            ),
        ),
        migrations.AlterField(
            model_name="flag",
            name="kind",
            field=models.CharField(
                choices=[
                    ("rupture", "Rupture"),
                    ("repair", "Repair"),
                    ("unrepaired", "Unrepaired rupture"),
                    ("decline", "Declining trend"),
                    ("sudden_gain", "Sudden gain"),
                    ("sudden_loss", "Sudden loss"),
                    ("low_alliance", "Alliance has stayed low"),
                    ("perspective_gap", "Therapist rated it well above the patient"),
                ],
                max_length=16,
            ),
        ),
    ]
