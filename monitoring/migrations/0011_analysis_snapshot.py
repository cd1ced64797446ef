# Each episode's analysis snapshot, stored beside its flag watermark (monitoring.flags.snapshots).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0010_idempotency_key")]

    operations = [
        migrations.AddField(
            model_name="episodeanalysis",
            name="analysed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="episodeanalysis",
            name="frames",
            field=models.JSONField(default=dict, help_text="The episode's rows of the analysis, column by column."),
        ),
        migrations.AddField(
            model_name="episodeanalysis",
            name="summary",
            field=models.JSONField(default=dict, help_text="Where the episode stands, for its caseload row."),
        ),
        migrations.AddField(
            model_name="episodeanalysis",
            name="version",
            field=models.CharField(
                blank=True,
                help_text="Snapshot format, clinic estimate and sensitivity it was computed with.",
                max_length=64,
            ),
        ),
    ]
