from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinics.errors import ApplicationError
from monitoring.instruments.definition import read_definition
from monitoring.instruments.services import instrument_load


class Command(BaseCommand):
    help = "Validate an instrument definition (JSON) and load it: a new version, or a translation of one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, help="definition files, see docs/instruments.md")

    def handle(self, *args: Any, files: list[Path], **options: Any) -> None:
        for path in files:
            try:
                instrument, action = instrument_load(definition=read_definition(path))
            except ApplicationError as exc:
                raise CommandError(f"{path}: {exc}") from exc
            self.stdout.write(f"{path}: {instrument} {action}.")
