from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring import tasks
from monitoring.collection.invitations import reminders_due


class Command(BaseCommand):
    help = "Queue the one reminder of every form link that is due (run every 15 minutes from cron)."

    def handle(self, *args: Any, **options: Any) -> None:
        due = reminders_due()
        for invitation_id in due:
            tasks.reminder_send.enqueue(invitation_id)
        self.stdout.write(f"{len(due)} reminder(s) queued.")
