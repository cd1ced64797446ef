from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from clinics.models import Clinic
from monitoring import tasks


class Command(BaseCommand):
    help = (
        "Re-estimate every clinic's reference values (pooled SDs, variance components); run nightly. "
        "Flags already stored keep the values they were computed with."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for clinic_id in Clinic.objects.values_list("pk", flat=True):
            tasks.clinic_estimate_refresh.enqueue(clinic_id)
        self.stdout.write("Clinic estimates queued.")
