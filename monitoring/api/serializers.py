"""Input and output shapes of the REST API: plain serializers, no ModelSerializer.

Inputs validate types strictly: JSON ``123`` is not a label and ``"true"`` is not a boolean
(DRF's stock fields coerce both), so what the OpenAPI schema promises is what the API accepts.
Range, choice and domain rules beyond the types stay in the services; the serializers only turn
JSON into the typed arguments the services take.

Outputs name objects by their opaque ``code`` (never a primary key): patients, episodes,
sessions, flags, export jobs, tokens, and staff by their *membership* code in the clinic.

One module on purpose (about 600 lines): the shapes are declarations that refer to each other
(``SessionOutput`` in ``AnalysisOutput``, ``StaffRef`` everywhere), and reading them side by side
is how one keeps the API's vocabulary consistent.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics.models import Episode, Membership, Session
from monitoring.analytics import columns as c
from monitoring.exports import EXPORTS, FORMATS
from monitoring.models import ExportJob, Flag, Rater, Response

LANGUAGES = [code for code, _ in settings.LANGUAGES]
SCALES = list(c.SCALES)

# --- Strict fields -------------------------------------------------------------------------------


class _StrictString:
    """Accepts JSON strings only (DRF's CharField also takes numbers)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_StrictString, serializers.CharField):
    pass


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictUUIDField(_StrictString, serializers.UUIDField):
    pass


class StrictChoiceField(_StrictString, serializers.ChoiceField):
    default_error_messages = {"invalid": "Choose one of the listed values."}


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only: not ``"5"``, not ``5.0``, not ``true``."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class QueryBooleanField(serializers.BooleanField):
    """A query-string boolean: exactly ``true`` or ``false`` (DRF's also takes yes, on, 1...)."""

    def to_internal_value(self, data: Any) -> bool:
        if data not in ("true", "false"):
            self.fail("invalid")
        return data == "true"


def _date_range(attrs: dict[str, Any], start: str, end: str) -> dict[str, Any]:
    if attrs.get(start) and attrs.get(end) and attrs[start] > attrs[end]:
        raise serializers.ValidationError({end: ["Must not be before " + start + "."]})
    return attrs


# --- Shared pieces -------------------------------------------------------------------------------


class ClinicRef(serializers.Serializer):
    code = serializers.UUIDField()
    name = serializers.CharField()


class StaffRef(serializers.Serializer):
    code = serializers.UUIDField(
        allow_null=True, help_text="The staff member's membership code in the clinic."
    )
    name = serializers.CharField()
    email = serializers.EmailField()


def staff_ref(context: dict[str, Any], user: Any, clinic_id: int) -> dict[str, Any] | None:
    """A staff member as the API names them; ``context["staff"]`` maps (user, clinic) to the
    membership code (loaded once per request by the view)."""
    if user is None:
        return None
    return {
        "code": context["staff"].get((user.pk, clinic_id)),
        "name": user.get_full_name() or user.email,
        "email": user.email,
    }


def _number(value: Any) -> float | None:
    """A float for JSON: NaN (no value) becomes null."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


# --- Identity and tokens -------------------------------------------------------------------------


class StaffOutput(StaffRef):
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    clinic = ClinicRef()


class MembershipOutput(serializers.Serializer):
    code = serializers.UUIDField()
    clinic = ClinicRef()
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class TokenOutput(serializers.Serializer):
    code = serializers.UUIDField()
    name = serializers.CharField()
    display = serializers.SerializerMethodField(help_text="The token's public start, to recognise it.")
    clinic = ClinicRef()
    owner = serializers.EmailField(source="user.email")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    def get_display(self, token: Any) -> str:
        return f"bdn_{token.prefix}_…"


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(help_text="The token itself. Shown this once; only its hash is stored.")


class TokenInput(serializers.Serializer):
    name = StrictCharField(max_length=100, help_text="What the token is for, e.g. the health record system.")
    clinic = StrictUUIDField(
        required=False, help_text="The clinic's code; may be left out if you work in one clinic only."
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class MeOutput(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    authenticated_by = serializers.ChoiceField(choices=[("session", "session"), ("token", "token")])
    token = TokenOutput(allow_null=True)
    memberships = MembershipOutput(many=True)


# --- Patients, episodes, sessions ----------------------------------------------------------------


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
    contact_email = StrictEmailField(required=False, allow_blank=True, default="")
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
    started_on = serializers.DateField()
    treatment = StrictChoiceField(choices=Episode.Treatment.choices, required=False, default="other")


class EpisodeCloseInput(serializers.Serializer):
    on = serializers.DateField(help_text="The last day of the episode.")


class FormLinkOutput(serializers.Serializer):
    url = serializers.URLField(help_text="The patient's one-time form link. Send it; do not store it.")
    expires_at = serializers.DateTimeField()


class SessionOutput(serializers.Serializer):
    code = serializers.UUIDField()
    patient = serializers.UUIDField(source="episode.patient.code")
    episode = serializers.UUIDField(source="episode.code")
    number = serializers.IntegerField()
    date = serializers.DateField()
    status = serializers.ChoiceField(choices=Session.Status.choices)
    patient_response = serializers.BooleanField(help_text="The patient's answers are in.")
    therapist_response = serializers.BooleanField(help_text="The therapist's rating is in.")
    form_link = FormLinkOutput(
        allow_null=True,
        default=None,
        help_text="The open form link (on one session's read and after a change), else null.",
    )


class SessionCreateInput(serializers.Serializer):
    date = serializers.DateField()
    status = StrictChoiceField(
        choices=Session.Status.choices,
        required=False,
        default=Session.Status.SCHEDULED,
        help_text="'held' also creates the patient's form link and returns it.",
    )


class SessionUpdateInput(serializers.Serializer):
    date = serializers.DateField(required=False)
    status = StrictChoiceField(choices=Session.Status.choices, required=False)


class SessionFilter(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    episode = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=Session.Status.choices, required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _date_range(attrs, "date_from", "date_to")


# --- Responses -----------------------------------------------------------------------------------


class AnswerInput(serializers.Serializer):
    item = StrictIntegerField(min_value=1, max_value=1000)
    value = StrictIntegerField(min_value=0, max_value=1000)


class ResponseInput(serializers.Serializer):
    rater = StrictChoiceField(
        choices=Rater.choices,
        required=False,
        default=Rater.PATIENT,
        help_text="'patient': a paper form entered on the patient's behalf (recorded as staff entry); "
        "'therapist': the therapist's own rating, where the clinic has it turned on.",
    )
    answers = serializers.ListField(child=AnswerInput(), min_length=1, max_length=200)

    def validate_answers(self, answers: list[dict[str, int]]) -> list[dict[str, int]]:
        items = [a["item"] for a in answers]
        if len(items) != len(set(items)):
            raise serializers.ValidationError("Give each item once.")
        return answers


class AnswerOutput(serializers.Serializer):
    item = serializers.IntegerField()
    subscale = serializers.CharField()
    value = serializers.IntegerField()


class InstrumentRef(serializers.Serializer):
    code = serializers.CharField()
    version = serializers.IntegerField()


class ResponseOutput(serializers.Serializer):
    session = serializers.UUIDField(source="session.code")
    patient = serializers.UUIDField(source="session.episode.patient.code")
    session_number = serializers.IntegerField(source="session.number")
    session_date = serializers.DateField(source="session.date")
    rater = serializers.ChoiceField(choices=Rater.choices)
    source = serializers.ChoiceField(choices=Response.Source.choices)  # type: ignore[assignment]
    submitted_at = serializers.DateTimeField()
    entered_by = serializers.EmailField(source="entered_by.email", allow_null=True, default=None)
    instrument = InstrumentRef()
    answers = serializers.SerializerMethodField()

    @extend_schema_field(AnswerOutput(many=True))
    def get_answers(self, response: Any) -> list[dict[str, Any]]:
        return [
            {"item": a.item.number, "subscale": a.item.subscale, "value": a.value}
            for a in sorted(response.answers.all(), key=lambda a: a.item.number)
        ]


class ScoreOutput(serializers.Serializer):
    scale = serializers.CharField()
    name = serializers.CharField()
    score = serializers.FloatField()


class ResponseDetailOutput(ResponseOutput):
    scores = ScoreOutput(many=True, help_text="Subscale and total scores of this form.")


class ResponseFilter(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    session = serializers.UUIDField(required=False)
    rater = serializers.ChoiceField(choices=Rater.choices, required=False)
    since = serializers.DateTimeField(required=False, help_text="Submitted at or after this time.")


# --- Flags ---------------------------------------------------------------------------------------


class SessionRef(serializers.Serializer):
    code = serializers.UUIDField()
    number = serializers.IntegerField()
    date = serializers.DateField()


class FlagOutput(serializers.Serializer):
    code = serializers.UUIDField()
    patient = serializers.UUIDField(source="episode.patient.code")
    episode = serializers.UUIDField(source="episode.code")
    session = SessionRef()
    scale = serializers.ChoiceField(choices=[(s, c.SCALE_LABELS[s]) for s in SCALES])
    kind = serializers.ChoiceField(choices=Flag.Kind.choices)
    alarm = serializers.BooleanField(
        help_text="True when the flag put the patient on the caseload (the unit of alarm is the "
        "patient-session); false for flags that explain (e.g. a subscale's share of an event)."
    )
    magnitude = serializers.FloatField()
    threshold = serializers.FloatField(allow_null=True)
    explanation = serializers.CharField()
    detail = serializers.DictField(help_text="The numbers behind the flag.")
    created_at = serializers.DateTimeField()
    acknowledgement = serializers.CharField(help_text="'discussed', 'not_relevant', or '' when open.")
    acknowledged_note = serializers.CharField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.EmailField(source="acknowledged_by.email", allow_null=True, default=None)


class FlagFilter(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    kind = serializers.ChoiceField(choices=Flag.Kind.choices, required=False)
    scale = serializers.ChoiceField(choices=SCALES, required=False)
    since = serializers.DateTimeField(required=False, help_text="Raised at or after this time.")
    acknowledged = QueryBooleanField(required=False)
    alarm = QueryBooleanField(required=False, help_text="Only alarms (true) or only explanations (false).")


class FlagAcknowledgeInput(serializers.Serializer):
    acknowledgement = StrictChoiceField(choices=Flag.Acknowledgement.choices)
    note = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class FlagAcknowledgedOutput(serializers.Serializer):
    acknowledged = FlagOutput(
        many=True, help_text="The flag and its siblings (same event on other scales) now acknowledged."
    )


# --- Analysis ------------------------------------------------------------------------------------


class LevelOutput(serializers.Serializer):
    """One scale's trait-like level for the episode (docs/methods.md)."""

    scale = serializers.CharField()
    n = serializers.IntegerField(help_text="Completed sessions.")
    level = serializers.FloatField(allow_null=True, help_text="The patient's own mean.")
    level_eb = serializers.FloatField(allow_null=True, help_text="Empirical-Bayes level.")
    reliability = serializers.FloatField(allow_null=True)
    provisional = serializers.BooleanField()
    within_sd = serializers.FloatField(allow_null=True)
    slope = serializers.FloatField(allow_null=True)
    ceiling = serializers.BooleanField()
    last_score = serializers.FloatField(allow_null=True)
    n_ruptures = serializers.IntegerField()
    n_repairs = serializers.IntegerField()
    n_unrepaired = serializers.IntegerField()
    n_declines = serializers.IntegerField()


def level_row(row: dict[str, Any]) -> dict[str, Any]:
    """An analysis.levels row (numpy values, NaN for none) as LevelOutput data."""
    return {
        "scale": str(row[c.SCALE]),
        "n": int(row[c.N]),
        **{
            k: _number(row.get(k))
            for k in ("level", "level_eb", "reliability", "within_sd", "slope", "last_score")
        },
        "provisional": bool(row[c.PROVISIONAL]),
        "ceiling": bool(row[c.CEILING]),
        **{k: int(row.get(k) or 0) for k in ("n_ruptures", "n_repairs", "n_unrepaired", "n_declines")},
    }


class ScalesOutput(serializers.Serializer):
    goal = serializers.FloatField(allow_null=True)
    task = serializers.FloatField(allow_null=True)
    bond = serializers.FloatField(allow_null=True)
    total = serializers.FloatField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True)


class ItemValueOutput(serializers.Serializer):
    item = serializers.IntegerField()
    value = serializers.IntegerField()


class SessionRowOutput(serializers.Serializer):
    code = serializers.UUIDField()
    number = serializers.IntegerField()
    date = serializers.DateField()
    status = serializers.ChoiceField(choices=Session.Status.choices)
    scores = ScalesOutput()
    patient_answers = ItemValueOutput(many=True)
    therapist_answers = ItemValueOutput(many=True)


class FlagEventOutput(serializers.Serializer):
    """One event as the patient page shows it: the headline flag, the other scales it showed on,
    the words, and whether it still counts for the caseload."""

    code = serializers.UUIDField(help_text="The headline flag (acknowledge this one).")
    kind = serializers.ChoiceField(choices=Flag.Kind.choices)
    session = serializers.IntegerField()
    scales = serializers.ListField(child=serializers.CharField())
    other_flags = serializers.ListField(child=serializers.UUIDField())
    title = serializers.CharField()
    tone = serializers.CharField()
    meaning = serializers.CharField()
    prompt = serializers.CharField()
    rule = serializers.CharField()
    counts = serializers.BooleanField(help_text="Still counts for the caseload's attention.")
    acknowledgement = serializers.CharField()
    acknowledged_note = serializers.CharField()


class PatternOutput(serializers.Serializer):
    title = serializers.CharField()
    meaning = serializers.CharField()
    prompt = serializers.CharField()
    explanation = serializers.CharField()


class AnalysisOutput(serializers.Serializer):
    patient = PatientOutput()
    episode = EpisodeOutput(allow_null=True)
    levels = LevelOutput(many=True)
    sessions = SessionRowOutput(many=True)
    flags = FlagEventOutput(many=True)
    pattern = PatternOutput(allow_null=True)


class BadgeOutput(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    tone = serializers.CharField()
    scales = serializers.ListField(child=serializers.CharField())
    session = serializers.IntegerField()


class CaseloadRowOutput(serializers.Serializer):
    patient = PatientOutput()
    sessions_held = serializers.IntegerField()
    last_session_date = serializers.DateField(allow_null=True)
    form_missing = serializers.BooleanField()
    latest_total = serializers.FloatField(allow_null=True)
    totals = serializers.ListField(child=serializers.FloatField())
    level = serializers.FloatField(allow_null=True)
    provisional = serializers.BooleanField()
    deviation = serializers.CharField()
    badges = BadgeOutput(many=True)
    pattern = serializers.CharField()
    priority = serializers.IntegerField(help_text="Lower is more urgent; 9 means nothing needs attention.")
    reason = serializers.CharField()


class CaseloadFilter(serializers.Serializer):
    therapist = serializers.UUIDField(required=False, help_text="Admins: one therapist's caseload.")
    q = serializers.CharField(required=False, max_length=60)


# --- Instruments and FHIR ------------------------------------------------------------------------


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
    start = serializers.DateField(required=False, allow_null=True, default=None)
    end = serializers.DateField(required=False, allow_null=True, default=None)
    therapist = StrictUUIDField(required=False, help_text="Only this therapist's episodes (membership code).")
    treatment = StrictChoiceField(choices=Episode.Treatment.choices, required=False)
    patient = StrictUUIDField(required=False, help_text="Only this patient (required by patient_report).")
    pseudonymise = StrictBooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
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
