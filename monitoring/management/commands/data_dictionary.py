"""Write docs/data-dictionary.md from the exporters' column declarations; ``--check`` only says
whether the file is up to date (exit status 1 when it is not), as the test does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.exports.dictionary import data_dictionary


class Command(BaseCommand):
    help = "Write docs/data-dictionary.md from the exporters (--check: only compare)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default=str(Path(settings.BASE_DIR) / "docs" / "data-dictionary.md"))
        parser.add_argument("--check", action="store_true", help="Fail if the file differs; write nothing.")

    def handle(self, *args: Any, out: str, check: bool, **options: Any) -> None:
        path = Path(out)
        text = data_dictionary()
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if check:
            if current != text:
                raise CommandError(f"{path} is out of date: run manage.py data_dictionary.")
            self.stdout.write(f"{path} is up to date.")
            return
        if current == text:
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {path}.")
