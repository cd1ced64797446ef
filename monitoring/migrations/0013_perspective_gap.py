# Two perspectives (issue 16, item 8): a session the therapist rated well above the patient is
# stored as a flag, judged once per paired session.
from django.db import migrations, models


def judged_already(apps, schema_editor):
    """Sessions both rated up to an episode's watermark count as judged, so that the first
    analysis after the upgrade raises no two-perspectives flag at a session seen analysed before
    (flags are prospective: only sessions after the watermark, or completed later, are judged)."""
    EpisodeAnalysis = apps.get_model("monitoring", "EpisodeAnalysis")
    Response = apps.get_model("monitoring", "Response")
    rated: dict[tuple[int, int], set[str]] = {}
    for episode_id, number, rater in Response.objects.filter(measure="alliance").values_list(
        "session__episode_id", "session__number", "rater"
    ):
        rated.setdefault((episode_id, number), set()).add(rater)
    both: dict[int, list[int]] = {}
    for (episode_id, number), raters in rated.items():
        if {"patient", "therapist"} <= raters:
            both.setdefault(episode_id, []).append(number)
    for state in EpisodeAnalysis.objects.filter(episode_id__in=list(both)):
        state.analysed_pairs = sorted(n for n in both[state.episode_id] if n <= state.flagged_through)
        state.save(update_fields=["analysed_pairs"])


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
        migrations.RunPython(judged_already, migrations.RunPython.noop),
    ]
