from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring.collection.schedules import due_forms_send


class Command(BaseCommand):
    help = (
        "Make the sessions of patients' recurring appointments as they come due and send each form "
        "link by the patient's channel (run every 15 minutes from cron; running it twice sends "
        "nothing twice). What could not be sent is listed on standard error, by patient code."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = due_forms_send()
        for result in done:
            (self.stderr if result.problem else self.stdout).write(result.line())
        sent = sum(result.sent for result in done)
        problems = sum(bool(result.problem) for result in done)
        self.stdout.write(f"{len(done)} due appointment(s): {sent} form link(s) sent, {problems} reported.")
