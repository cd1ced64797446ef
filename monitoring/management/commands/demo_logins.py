from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from monitoring.management.commands.seed_demo import DEMO_TOTP_SECRET, demo_logins


class Command(BaseCommand):
    help = "Print the demo clinic's sign-in details."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("\nBordin demo is starting at " + settings.SITE_URL + "/\nSign in with:")
        for email, role, password in demo_logins():
            self.stdout.write(f"  {email:<28} {role:<13} password: {password}")
        self.stdout.write(
            "Then the two-factor code: add the secret "
            f"{DEMO_TOTP_SECRET} to an authenticator app, or run `make code` to print the current one.\n"
        )
