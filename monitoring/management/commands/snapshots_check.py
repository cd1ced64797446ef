from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinics.models import Clinic
from monitoring.flags.services import snapshots_check


class Command(BaseCommand):
    help = (
        "Compare every episode's stored analysis snapshot (what the pages read) with a fresh analysis "
        "of its answers. Fails if a snapshot is missing or differs; snapshots computed with earlier "
        "clinic parameters are counted (a background refresh is due). --repair re-analyses those found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clinic", help="only this clinic (its slug)")
        parser.add_argument("--repair", action="store_true", help="re-snapshot the episodes found")

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = None
        if options["clinic"]:
            clinic = Clinic.objects.filter(slug=options["clinic"]).first()
            if clinic is None:
                raise CommandError(f"No clinic {options['clinic']!r}.")
        found = snapshots_check(clinic=clinic, repair=options["repair"])
        self.stdout.write(
            f"{found.checked} episode(s) checked: {len(found.missing)} without a snapshot of all their "
            f"answers, {len(found.differing)} differing from a fresh analysis, {len(found.outdated)} "
            f"computed with earlier clinic parameters."
            + (
                " Re-analysed."
                if options["repair"] and (found.missing or found.differing or found.outdated)
                else ""
            )
        )
        if not found.ok and not options["repair"]:
            raise CommandError(
                "Some snapshots are missing or wrong (episodes "
                + ", ".join(map(str, (found.missing + found.differing)[:20]))
                + "): run snapshots_check --repair."
            )
