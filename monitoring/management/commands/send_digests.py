"""Send the e-mail digests that are due (run hourly from cron; see docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring.care.digest import digests_send


class Command(BaseCommand):
    help = "E-mail each staff member whose digest is due the news of their caseload (no patient named)."

    def handle(self, *args: Any, **options: Any) -> None:
        done = digests_send()
        self.stdout.write(
            f"{done['sent']} digest(s) sent, {done['nothing_new']} with nothing new, {done['failed']} failed."
        )
