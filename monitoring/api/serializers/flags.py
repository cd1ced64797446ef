"""Flags and safety alerts, and acknowledging or following them up."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from monitoring.analytics import columns as c
from monitoring.api.serializers.fields import (
    SCALES,
    PlausibleDateTimeField,
    QueryBooleanField,
    StrictCharField,
    StrictChoiceField,
)
from monitoring.flags.wording import score_bound
from monitoring.models import Flag, SafetyAlert


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
    magnitude = serializers.FloatField(
        help_text="The size of the event: for a rupture the points below the usual level (the "
        "prospective baseline in detail.baseline), for a persistently low alliance the points below "
        "the clinic's cut-off."
    )
    threshold = serializers.FloatField(
        allow_null=True,
        help_text="As the analysis stores it: for a rupture the drop from the usual level the rule "
        "allows, for a repair the points to regain, for a decline the CUSUM limit, for a low alliance "
        "the cut-off. The score it comes to is `bound`.",
    )
    bound = serializers.SerializerMethodField(
        help_text="The score this session's score was compared with (a rupture: at or below it; a "
        "repair: back at or above it; a low alliance: below the cut-off); null for a decline (a CUSUM "
        "limit) and a sudden gain or loss (a change, not a score)."
    )
    explanation = serializers.CharField()
    detail = serializers.DictField(help_text="The numbers behind the flag.")
    created_at = serializers.DateTimeField()
    acknowledgement = serializers.CharField(help_text="'discussed', 'not_relevant', or '' when open.")
    acknowledged_note = serializers.CharField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.EmailField(source="acknowledged_by.email", allow_null=True, default=None)

    def get_bound(self, flag: Flag) -> float | None:
        bound = score_bound(
            rule=str(flag.detail.get("rule", "")),
            detail={"repair_tolerance": flag.config.get("repair_tolerance"), **flag.detail},
            threshold=flag.threshold,
            magnitude=flag.magnitude,
        )
        return None if bound is None else round(bound, 4)


class FlagFilter(serializers.Serializer):
    patient = serializers.UUIDField(required=False)
    kind = serializers.ChoiceField(choices=Flag.Kind.choices, required=False)
    scale = serializers.ChoiceField(choices=SCALES, required=False)
    since = PlausibleDateTimeField(required=False, help_text="Raised at or after this time.")
    acknowledged = QueryBooleanField(required=False)
    alarm = QueryBooleanField(required=False, help_text="Only alarms (true) or only explanations (false).")


class FlagAcknowledgeInput(serializers.Serializer):
    acknowledgement = StrictChoiceField(choices=Flag.Acknowledgement.choices)
    note = StrictCharField(max_length=500, required=False, allow_blank=True, default="", multiline=True)


class FlagReopenedOutput(serializers.Serializer):
    reopened = FlagOutput(
        many=True,
        help_text="The flag and its siblings whose acknowledgement was undone (empty if it was open).",
    )


class FlagAcknowledgedOutput(serializers.Serializer):
    acknowledged = FlagOutput(
        many=True, help_text="The flag and its siblings (same event on other scales) now acknowledged."
    )


# --- Safety alerts -------------------------------------------------------------------------------


class SafetyAlertOutput(serializers.Serializer):
    code = serializers.UUIDField()
    patient = serializers.UUIDField(source="episode.patient.code")
    episode = serializers.UUIDField(source="episode.code")
    session = SessionRef()
    measure = serializers.CharField(source="response.measure", help_text="The measure answered, e.g. phq9.")
    item = serializers.IntegerField(help_text="The risk item (PHQ-9: 9).")
    value = serializers.IntegerField()
    answer_label = serializers.CharField(help_text="The answer as the patient saw it.")
    raised_at = serializers.DateTimeField()
    notified_at = serializers.DateTimeField(allow_null=True, help_text="When the therapist was e-mailed.")
    open = serializers.SerializerMethodField(help_text="No follow-up recorded yet.")
    follow_up = serializers.ChoiceField(
        choices=[("", ""), *SafetyAlert.FollowUp.choices], help_text="'' while open."
    )
    follow_up_note = serializers.CharField()
    followed_up_at = serializers.DateTimeField(allow_null=True)
    followed_up_by = serializers.EmailField(source="followed_up_by.email", allow_null=True, default=None)

    def get_open(self, alert: Any) -> bool:
        return alert.followed_up_at is None


class SafetyAlertFilter(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["open", "followed_up", "all"],
        required=False,
        default="open",
        help_text="Open alerts (the default), those followed up, or all.",
    )
    patient = serializers.UUIDField(required=False)
    since = PlausibleDateTimeField(required=False, help_text="Raised at or after this time.")


class SafetyFollowUpInput(serializers.Serializer):
    follow_up = StrictChoiceField(choices=SafetyAlert.FollowUp.choices, help_text="What was done.")
    note = StrictCharField(
        max_length=2000,
        multiline=True,
        allow_blank=True,
        help_text="A short note of what was done and agreed (required, at most 2,000 characters).",
    )

    def validate_note(self, note: str) -> str:
        if not note.strip():
            raise serializers.ValidationError("Write a short note of what was done and agreed.")
        return note


# --- Symptoms ------------------------------------------------------------------------------------
