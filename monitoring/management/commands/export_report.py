"""``manage.py export_report``: any report in any of its formats, to a file, audited.

Runs the same exporter objects as the admin page and the API (``monitoring.exports.EXPORTS``)
through ``export_services.export_run``; the audit entry has no actor and says "command line".
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinics.errors import ApplicationError
from clinics.models import Clinic, Patient
from monitoring.exports import EXPORTS, FORMATS, ExportFilters
from monitoring.exports.services import VIA_COMMAND, export_run


class Command(BaseCommand):
    help = (
        "Export a report (docs/exports.md) of one clinic to a file, e.g. for research or the health record."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identifier", choices=sorted(EXPORTS), help="the report")
        parser.add_argument("--clinic", required=True, help="the clinic's slug")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument(
            "--from", dest="start", type=date.fromisoformat, help="first session date, YYYY-MM-DD"
        )
        parser.add_argument("--to", dest="end", type=date.fromisoformat, help="last session date, YYYY-MM-DD")
        parser.add_argument("--therapist", help="only this therapist's episodes (email)")
        parser.add_argument("--treatment", default="", help="only episodes of this treatment (e.g. cbt)")
        parser.add_argument("--patient", default="", help="one patient, by external id or label")
        parser.add_argument(
            "--pseudonymise", action="store_true", help="research export: keyed codes, no names"
        )
        parser.add_argument(
            "--study-key",
            default="",
            help="pseudonymise under this study key (16+ characters) so a study's exports join; "
            "without it each export draws a random key",
        )
        parser.add_argument(
            "--fhir-bundle",
            default="collection",
            choices=("collection", "transaction"),
            help="FHIR bundle type: collection (to file) or transaction (to load into a FHIR server)",
        )
        parser.add_argument("--out", required=True, type=Path, help="the file to write")

    def handle(
        self,
        *args: Any,
        identifier: str,
        clinic: str,
        start: date | None,
        end: date | None,
        therapist: str | None,
        treatment: str,
        patient: str,
        pseudonymise: bool,
        out: Path,
        **options: Any,
    ) -> None:
        fmt = str(options["format"])
        out = Path(out)  # call_command passes options as given, without argparse's type
        clinic_obj = Clinic.objects.filter(slug=clinic).first()
        if clinic_obj is None:
            raise CommandError(f"No clinic with slug '{clinic}'.")
        therapist_id = None
        if therapist:
            user = (
                get_user_model()
                .objects.filter(email__iexact=therapist, memberships__clinic=clinic_obj)
                .first()
            )
            if user is None:
                raise CommandError(f"No member of {clinic_obj} with email '{therapist}'.")
            therapist_id = user.pk
        patient_code = ""
        if patient:
            found = (
                Patient.objects.filter(clinic=clinic_obj, external_id=patient).first()
                or Patient.objects.filter(clinic=clinic_obj, label=patient).first()
            )
            if found is None:
                raise CommandError(f"No patient with external id or label '{patient}' in {clinic_obj}.")
            patient_code = str(found.code)
        try:
            filters = ExportFilters(
                start=start,
                end=end,
                therapist_id=therapist_id,
                treatment=treatment,
                patient_code=patient_code,
                pseudonymise=pseudonymise or bool(options.get("study_key")),
                pseudonym_key=str(options.get("study_key") or ""),
                fhir_bundle=str(options.get("fhir_bundle") or "collection"),
            )
            rendered = export_run(
                clinic=clinic_obj, user=None, identifier=identifier, fmt=fmt, filters=filters, via=VIA_COMMAND
            )
            blocks = [rendered.content] if isinstance(rendered.content, bytes) else rendered.content
            # Written under a temporary name and renamed, so a failed export never leaves a
            # truncated file that looks complete.
            partial = out.with_name(out.name + ".part")
            size = 0
            try:
                with open(partial, "wb") as handle:
                    for block in blocks:
                        handle.write(block)
                        size += len(block)
                os.replace(partial, out)
            finally:
                partial.unlink(missing_ok=True)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Wrote {out} ({size:,} bytes, {rendered.content_type}).")
