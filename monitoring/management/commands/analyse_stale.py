from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinics.models import Clinic
from monitoring.flags.selectors import episodes_stale
from monitoring.flags.services import episodes_stale_analyse


class Command(BaseCommand):
    help = (
        "Analyse every episode whose stored flags are older than its patient's answers (after a task "
        "queue outage, a killed worker or a failed task). Idempotent; run it from cron, e.g. every "
        "15 minutes. --check only counts them and fails if there are any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clinic", help="only this clinic (its slug)")
        parser.add_argument("--check", action="store_true", help="count stale episodes, analyse nothing")
        parser.add_argument("--batch", type=int, default=200, help="episodes analysed together")

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = None
        if options["clinic"]:
            clinic = Clinic.objects.filter(slug=options["clinic"]).first()
            if clinic is None:
                raise CommandError(f"No clinic {options['clinic']!r}.")
        if options["check"]:
            stale = episodes_stale(clinic=clinic)
            self.stdout.write(f"{len(stale)} stale episode(s).")
            if stale:
                raise CommandError("Stored analyses are older than their answers: run analyse_stale.")
            return
        sweep = episodes_stale_analyse(clinic=clinic, batch=max(1, options["batch"]))
        self.stdout.write(
            f"{sweep.found} stale episode(s) analysed, {sweep.flags} new flag(s); "
            f"{len(sweep.failed)} failed, {sweep.left} stale now."
        )
        if sweep.failed:
            raise CommandError(f"The analysis of {len(sweep.failed)} episode(s) failed; see the log.")
