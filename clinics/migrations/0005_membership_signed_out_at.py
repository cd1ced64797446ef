# Issue 14, finding 1: a clinic's "Sign out everywhere" ends that clinic's access only.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clinics", "0004_input_bounds"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="signed_out_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
