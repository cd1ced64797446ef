"""Create a clinic and invite its first admin (the only step done on the server; everything
after happens in the app): ``manage.py clinic_create --slug lindenhof --name "Lindenhof" --admin
someone@example.org``. Prints the one-time invitation link, which is also emailed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from clinics.errors import ApplicationError
from clinics.models import Clinic, Membership
from clinics.services import staff_invite


class Command(BaseCommand):
    help = "Create a clinic and invite its first admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="short name in addresses, e.g. lindenhof")
        parser.add_argument("--name", required=True, help="the clinic's name as staff see it")
        parser.add_argument("--admin", required=True, help="email of the first clinic admin")

    def handle(self, *args: Any, slug: str, name: str, admin: str, **options: Any) -> None:
        if Clinic.objects.filter(slug=slug).exists():
            raise CommandError(f"A clinic '{slug}' exists already; nothing changed.")
        try:
            with transaction.atomic():
                clinic = Clinic.objects.create(slug=slug, name=name)
                _, link = staff_invite(
                    clinic=clinic,
                    email=admin,
                    role=Membership.Role.ADMIN,
                    invited_by=None,
                    join_url=lambda token: f"{settings.SITE_URL}/join/{token}/",
                )
        except ApplicationError as error:
            raise CommandError(f"{error.message} Nothing changed.") from None
        self.stdout.write(
            f"Clinic '{name}' created. {admin} can join as its admin (once, within 7 days):\n{link}"
        )
