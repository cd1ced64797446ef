"""Instruments, reports and export jobs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics.models import Episode
from monitoring.api.serializers.fields import (
    LANGUAGES,
    PlausibleDateField,
    StrictBooleanField,
    StrictChoiceField,
    StrictUUIDField,
    _date_range,
)
from monitoring.exports import EXPORTS, FHIR_BUNDLES, FORMATS, MIN_STUDY_KEY
from monitoring.models import ExportJob, Rater


class InstrumentItemOutput(serializers.Serializer):
    number = serializers.IntegerField()
    subscale = serializers.CharField()
    reverse_keyed = serializers.BooleanField()


class InstrumentOutput(serializers.Serializer):
    code = serializers.CharField()
    version = serializers.IntegerField()
    rater = serializers.ChoiceField(choices=Rater.choices)
    scale_min = serializers.IntegerField()
    scale_max = serializers.IntegerField()
    subscales = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    items = InstrumentItemOutput(many=True)


class LanguageQuery(serializers.Serializer):
    language = serializers.ChoiceField(
        choices=LANGUAGES, required=False, default="en", help_text="Wording to use (falls back to English)."
    )


class CodeSystemQuery(LanguageQuery):
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=999_999_999, help_text="The newest if left out."
    )


# --- Exports -------------------------------------------------------------------------------------


class ReportOutput(serializers.Serializer):
    identifier = serializers.CharField()
    name = serializers.CharField(source="verbose_name")
    description = serializers.CharField()
    formats = serializers.ListField(child=serializers.CharField())
    needs_patient = serializers.BooleanField()


class ExportInput(serializers.Serializer):
    report = StrictChoiceField(choices=sorted(EXPORTS))
    format = StrictChoiceField(choices=list(FORMATS))
    clinic = StrictUUIDField(required=False, help_text="Implied by a token, or if you administer one clinic.")
    start = PlausibleDateField(required=False, allow_null=True, default=None)
    end = PlausibleDateField(required=False, allow_null=True, default=None)
    therapist = StrictUUIDField(required=False, help_text="Only this therapist's episodes (membership code).")
    treatment = StrictChoiceField(choices=Episode.Treatment.choices, required=False)
    patient = StrictUUIDField(
        required=False,
        help_text="A patient's code (GET /api/v1/patients/). Required by patient_report (and any "
        "report with needs_patient), which reports that patient's latest episode in the period; "
        "other reports are narrowed to this one patient. A patient of another clinic is a 400.",
    )
    pseudonymise = StrictBooleanField(required=False, default=False)
    study_key = serializers.CharField(
        required=False,
        write_only=True,
        min_length=MIN_STUDY_KEY,
        max_length=200,
        trim_whitespace=False,
        help_text="A pseudonymised export's key (implies pseudonymise): exports with the same study key "
        "get the same pseudonyms and can be joined; without one each export draws a random key. At "
        f"least {MIN_STUDY_KEY} characters. Never stored in plain text: the job keeps it sealed until "
        "it has run, the audit trail only its fingerprint.",
    )
    fhir_bundle = StrictChoiceField(
        choices=list(FHIR_BUNDLES),
        required=False,
        default="collection",
        help_text="The FHIR Bundle type (format fhir only): collection, to file; transaction, to "
        "load into a FHIR server (conditional creates: loading it twice creates nothing new).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("fhir_bundle", "collection") != "collection" and attrs.get("format") != "fhir":
            raise serializers.ValidationError({"fhir_bundle": ["Only a fhir export has a bundle type."]})
        return _date_range(attrs, "start", "end")


class ExportJobOutput(serializers.Serializer):
    code = serializers.UUIDField()
    report = serializers.CharField(source="exporter")
    format = serializers.CharField()
    status = serializers.ChoiceField(choices=ExportJob.Status.choices)
    progress = serializers.IntegerField(help_text="Percent.")
    error = serializers.CharField(help_text="Why it failed ('' unless failed).")
    filename = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, job: Any) -> str | None:
        if job.status != "done":
            return None
        request = self.context["request"]
        return str(request.build_absolute_uri(f"/api/v1/exports/{job.code}/download/"))
