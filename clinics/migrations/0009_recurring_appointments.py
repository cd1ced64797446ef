# Placeholder reserved so that concurrent work can depend on it; its operations are filled in by
# the change that needs them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clinics", "0008_supervisor_role")]

    operations: list[migrations.operations.base.Operation] = []
