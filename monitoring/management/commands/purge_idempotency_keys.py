"""Delete the API's Idempotency-Key records older than a day (daily, from cron, beside
purge_exports): a stored answer is only replayed within 24 hours, and it holds patient data."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring.api.idempotency import idempotency_keys_purge


class Command(BaseCommand):
    help = "Delete API Idempotency-Key records older than 24 hours."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = idempotency_keys_purge()
        self.stdout.write(f"{removed} idempotency key(s) removed.")
