"""Print the demo accounts' current two-factor code (`make code`). Demo only: the demo accounts
share a published authenticator secret; real accounts each set up their own app."""

from __future__ import annotations

import time
from typing import Any

from allauth.mfa import app_settings
from django.core.management.base import BaseCommand

from monitoring.management.commands.seed_demo import DEMO_TOTP_SECRET
from monitoring.security.allauth import totp_code


def demo_code() -> tuple[str, int]:
    """The code an authenticator app shows now, and the seconds it stays valid."""
    now = int(time.time())
    left = app_settings.TOTP_PERIOD - now % app_settings.TOTP_PERIOD
    return totp_code(secret=DEMO_TOTP_SECRET, at=now), left


class Command(BaseCommand):
    help = "Print the current two-factor code of the demo accounts."

    def handle(self, *args: Any, **options: Any) -> None:
        code, left = demo_code()
        self.stdout.write(f"Two-factor code for every demo account: {code} (valid for {left} more seconds)")
