"""Delete finished export files older than a week (daily, from cron): health data should not
linger on disk. The jobs stay in the list, without a file. Jobs made before pseudonym keys were
sealed lose the key they kept in plain text (``export_keys_scrub``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitoring.exports.services import export_files_purge, export_keys_scrub


class Command(BaseCommand):
    help = "Delete finished export files older than --days (default 7)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7)

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        removed = export_files_purge(older_than=timedelta(days=days))
        self.stdout.write(f"{removed} export file(s) removed.")
        scrubbed = export_keys_scrub()
        if scrubbed:
            self.stdout.write(f"{scrubbed} old export job(s) no longer keep a pseudonym key.")
