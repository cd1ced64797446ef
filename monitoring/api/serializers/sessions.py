"""Sessions and the answers (responses) recorded for them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics.models import Session
from monitoring.api.serializers.fields import (
    MEASURE_HELP,
    MeasureField,
    PlausibleDateField,
    PlausibleDateTimeField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    _date_range,
)
from monitoring.api.serializers.patients import FormLinkOutput
from monitoring.models import Rater, Response


class SessionOutput(serializers.Serializer):
    code = serializers.UUIDField()
    patient = serializers.UUIDField(source="episode.patient.code")
    episode = serializers.UUIDField(source="episode.code")
    number = serializers.IntegerField()
    date = serializers.DateField()
    status = serializers.ChoiceField(choices=Session.Status.choices)
    external_id = serializers.CharField(
        allow_null=True, help_text="The health record's appointment id, if it pushed one."
    )
    patient_response = serializers.BooleanField(help_text="The patient's alliance answers are in.")
    therapist_response = serializers.BooleanField(help_text="The therapist's rating is in.")
    measures = serializers.DictField(
        source="measures_in",
        child=serializers.BooleanField(),
        help_text='Whether the patient\'s answers of each measure are in: "alliance" and each symptom '
        'measure the clinic asks (or that was answered), e.g. {"alliance": true, "phq9": true, '
        '"gad7": false}.',
    )
    form_link = FormLinkOutput(
        allow_null=True,
        default=None,
        help_text="The open form link (on one session's read and after a change), else null.",
    )


class SessionCreateInput(serializers.Serializer):
    date = PlausibleDateField()
    status = StrictChoiceField(
        choices=Session.Status.choices,
        required=False,
        default=Session.Status.SCHEDULED,
        help_text="'held' also creates the patient's form link and returns it.",
    )
    external_id = StrictCharField(
        max_length=100,
        required=False,
        help_text="The health record's id of the appointment, unique in the clinic. A retried push with "
        "the same id answers 200 with the session made the first time (unchanged) instead of adding "
        "another; the same id for another patient is a 409 `external_id_taken`.",
    )


class SessionUpdateInput(serializers.Serializer):
    date = PlausibleDateField(required=False)
    status = StrictChoiceField(choices=Session.Status.choices, required=False)


class SessionFilter(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    episode = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=Session.Status.choices, required=False)
    date_from = PlausibleDateField(required=False)
    date_to = PlausibleDateField(required=False)

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
    measure = MeasureField(
        required=False,
        default="alliance",
        help_text=MEASURE_HELP + " A symptom measure is rated by the patient only; entering it "
        "does not mark the session held.",
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
    measure = serializers.CharField(help_text='"alliance", or the symptom measure\'s code ("phq9").')
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
    score = serializers.FloatField(allow_null=True)
    band = serializers.CharField(
        help_text="A symptom measure's severity band of the total (e.g. 'moderate'); '' for the alliance."
    )


class ResponseDetailOutput(ResponseOutput):
    scores = ScoreOutput(
        many=True,
        help_text="The alliance form's subscale and total scores; a symptom measure's total (null "
        "when too many items are missing) and its severity band.",
    )


class ResponseFilter(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    session = serializers.UUIDField(required=False)
    rater = serializers.ChoiceField(choices=Rater.choices, required=False)
    measure = MeasureField(required=False, help_text=MEASURE_HELP.replace(" (the default)", ""))
    since = PlausibleDateTimeField(required=False, help_text="Submitted at or after this time.")


class ResponseQuery(serializers.Serializer):
    measure = MeasureField(required=False, default="alliance", help_text=MEASURE_HELP)


# --- Flags ---------------------------------------------------------------------------------------
