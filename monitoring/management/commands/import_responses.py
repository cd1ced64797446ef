from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinics.errors import ApplicationError
from clinics.models import Clinic
from monitoring.collection.importing import responses_import
from monitoring.models import Instrument


class Command(BaseCommand):
    help = (
        "Import patient-rated answers from a long or wide CSV (docs/import.md). All or nothing: "
        "one bad row and nothing is imported; every bad row is reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--clinic", required=True, help="the clinic's slug")
        parser.add_argument("--therapist", required=True, help="email of the therapist for new patients")
        parser.add_argument("--instrument", help="instrument code (default: the patient-rated one)")

    def handle(
        self, *args: Any, file: Path, clinic: str, therapist: str, instrument: str | None, **o: Any
    ) -> None:
        try:
            clinic_obj = Clinic.objects.get(slug=clinic)
        except Clinic.DoesNotExist as exc:
            raise CommandError(f"No clinic with slug '{clinic}'.") from exc
        user = get_user_model().objects.filter(email__iexact=therapist).first()
        if user is None:
            raise CommandError(f"No user with email '{therapist}'.")
        instrument_obj = None
        if instrument:
            instrument_obj = Instrument.objects.filter(code=instrument).order_by("-version").first()
            if instrument_obj is None:
                raise CommandError(f"No instrument with code '{instrument}'.")
        try:
            with file.open(encoding="utf-8-sig", newline="") as handle:
                result = responses_import(
                    clinic=clinic_obj, file=handle, therapist=user, instrument=instrument_obj
                )
        except FileNotFoundError as exc:
            raise CommandError(f"No such file: {file}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text: save it as CSV (UTF-8) and try again.") from exc
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Imported {result.responses_created} responses ({result.answers_created} answers): "
            f"{result.patients_created} new patients, {result.sessions_created} new sessions."
        )
