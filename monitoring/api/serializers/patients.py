"""Patients, their episodes of care and form links."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics.models import Episode
from monitoring.api.serializers.fields import (
    LANGUAGES,
    PlausibleDateField,
    QueryBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictEmailField,
    StrictUUIDField,
)
from monitoring.api.serializers.identity import ClinicRef, StaffRef, staff_ref


class PatientOutput(serializers.Serializer):
    code = serializers.UUIDField()
    clinic = ClinicRef()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    external_id = serializers.CharField()
    language = serializers.CharField()
    contact_email = serializers.CharField()
    contact_phone = serializers.CharField()
    is_active = serializers.BooleanField()
    therapist = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(StaffRef(allow_null=True))
    def get_therapist(self, patient: Any) -> dict[str, Any] | None:
        return staff_ref(self.context, patient.therapist, patient.clinic_id)


class PatientCreateInput(serializers.Serializer):
    clinic = StrictUUIDField(
        required=False, help_text="The clinic's code; implied by a token, or if you administer one clinic."
    )
    label = StrictCharField(  # type: ignore[assignment]  # a field, not Field.label
        max_length=60, help_text="How staff recognise the patient, e.g. initials."
    )
    external_id = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    language = StrictChoiceField(choices=LANGUAGES, required=False)
    # No default: "" is no e-mail address, and a schema whose default fails its own format does
    # not validate (left out, the patient has no address; the view fills in "").
    contact_email = StrictEmailField(required=False, allow_blank=True)
    contact_phone = StrictCharField(max_length=32, required=False, allow_blank=True, default="")
    therapist = StrictUUIDField(help_text="Membership code of the patient's therapist (GET /api/v1/staff/).")


class PatientUpdateInput(serializers.Serializer):
    label = StrictCharField(max_length=60, required=False)  # type: ignore[assignment]
    external_id = StrictCharField(max_length=100, required=False, allow_blank=True)
    language = StrictChoiceField(choices=LANGUAGES, required=False)
    contact_email = StrictEmailField(required=False, allow_blank=True)
    contact_phone = StrictCharField(max_length=32, required=False, allow_blank=True)


class PatientFilter(serializers.Serializer):
    q = serializers.CharField(required=False, max_length=60, help_text="Part of the label or external id.")
    external_id = serializers.CharField(required=False, max_length=100, help_text="Exact external id.")
    active = QueryBooleanField(required=False, help_text="Only active (true) or discharged (false) patients.")
    therapist = serializers.UUIDField(required=False, help_text="The therapist's membership code.")


class EpisodeOutput(serializers.Serializer):
    code = serializers.UUIDField()
    patient = serializers.UUIDField(source="patient.code")
    therapist = serializers.SerializerMethodField()
    treatment = serializers.ChoiceField(choices=Episode.Treatment.choices)
    started_on = serializers.DateField()
    ended_on = serializers.DateField(allow_null=True)
    is_open = serializers.BooleanField()

    @extend_schema_field(StaffRef(allow_null=True))
    def get_therapist(self, episode: Any) -> dict[str, Any] | None:
        return staff_ref(self.context, episode.therapist, episode.patient.clinic_id)


class EpisodeInput(serializers.Serializer):
    started_on = PlausibleDateField()
    treatment = StrictChoiceField(choices=Episode.Treatment.choices, required=False, default="other")


class EpisodeCloseInput(serializers.Serializer):
    on = PlausibleDateField(help_text="The last day of the episode.")


class FormLinkOutput(serializers.Serializer):
    url = serializers.URLField(help_text="The patient's one-time form link. Send it; do not store it.")
    expires_at = serializers.DateTimeField()
