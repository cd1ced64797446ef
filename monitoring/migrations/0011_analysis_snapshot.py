# Placeholder reserved so that concurrent work can depend on it; its operations are filled in by
# the change that needs them.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0010_idempotency_key")]

    operations: list[migrations.operations.base.Operation] = []
