"""A patient's analysis (levels, scales, symptom courses) and the caseload."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics.models import Session
from monitoring.analytics import columns as c
from monitoring.api.serializers.flags import SafetyAlertOutput
from monitoring.api.serializers.patients import EpisodeOutput, PatientOutput
from monitoring.models import Flag
from monitoring.outcomes.selectors import MeasureCourse, OutcomeStatus


def _number(value: Any) -> float | None:
    """A float for JSON: NaN (no value) becomes null."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


class SymptomPointOutput(serializers.Serializer):
    session = serializers.IntegerField()
    score = serializers.FloatField()
    band = serializers.CharField()
    expected = serializers.FloatField(
        allow_null=True, help_text="The expected score at this session for a patient who started alike."
    )
    upper = serializers.FloatField(
        allow_null=True, help_text="The top of the expected band: above it is not on track."
    )


class SymptomStatusOutput(serializers.Serializer):
    """Where one symptom measure stands in the episode (docs/methods.md section 6)."""

    measure = serializers.CharField(help_text="The measure's code, e.g. phq9.")
    name = serializers.CharField()
    first = serializers.FloatField(help_text="The first score of the episode.")
    latest = serializers.FloatField()
    latest_session = serializers.IntegerField()
    band = serializers.CharField(help_text="The latest score's severity band.")
    change = serializers.FloatField(allow_null=True, help_text="Latest minus first; null with one score.")
    reliable = serializers.ChoiceField(
        choices=["improved", "deteriorated", ""],
        help_text="Reliable change (NHS Talking Therapies: 6 points on PHQ-9, 4 on GAD-7), or ''.",
    )
    not_on_track = serializers.BooleanField(
        help_text="The latest score is above the expected band for this session."
    )
    expected = serializers.FloatField(allow_null=True, help_text="The expected score at the latest session.")
    upper = serializers.FloatField(allow_null=True, help_text="The top of the expected band there.")
    curve_source = serializers.ChoiceField(
        choices=["clinic", "published"],
        help_text="Whether the expected course comes from the clinic's own finished episodes.",
    )


class SymptomCourseOutput(SymptomStatusOutput):
    scores = SymptomPointOutput(many=True, help_text="Each answered session, oldest first.")


def symptom_status(course: MeasureCourse, *, with_scores: bool = False) -> dict[str, Any]:
    """One measure's :class:`MeasureCourse` as SymptomStatusOutput (or SymptomCourseOutput) data."""
    last = course.expected[-1] if course.expected else None
    data: dict[str, Any] = {
        "measure": course.spec.code,
        "name": course.spec.name,
        "first": course.first,
        "latest": course.latest,
        "latest_session": course.latest_session,
        "band": course.band,
        "change": course.change,
        "reliable": course.reliable,
        "not_on_track": course.not_on_track,
        "expected": _number(last[1]) if last else None,
        "upper": _number(last[2]) if last else None,
        "curve_source": course.curve_source or "published",
    }
    if with_scores:
        expected = {number: (e, u) for number, e, u in course.expected}
        data["scores"] = [
            {
                "session": number,
                "score": score,
                "band": course.spec.band(score),
                "expected": _number(expected[number][0]) if number in expected else None,
                "upper": _number(expected[number][1]) if number in expected else None,
            }
            for number, score in course.scores
        ]
    return data


def symptom_statuses(status: OutcomeStatus, *, with_scores: bool = False) -> list[dict[str, Any]]:
    return [symptom_status(course, with_scores=with_scores) for course in status.courses.values()]


# --- Analysis ------------------------------------------------------------------------------------


class LevelOutput(serializers.Serializer):
    """One scale's trait-like level for the episode (docs/methods.md)."""

    scale = serializers.CharField()
    n = serializers.IntegerField(help_text="Completed sessions.")
    level = serializers.FloatField(
        allow_null=True,
        help_text="The long-run level: the patient's own mean over all sessions so far (trait-like; "
        "not the usual level the flags compare with, which is the prospective baseline).",
    )
    level_eb = serializers.FloatField(
        allow_null=True, help_text="Empirical-Bayes long-run level (shrunk towards the clinic mean)."
    )
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
    symptoms = serializers.DictField(
        child=serializers.FloatField(),
        help_text='Symptom totals of this session by measure, e.g. {"phq9": 14}.',
    )
    patient_answers = ItemValueOutput(many=True)
    therapist_answers = ItemValueOutput(many=True)


class FlagStepOutput(serializers.Serializer):
    """One step of an event's story: a kind of flag at a session, on one or more scales."""

    code = serializers.UUIDField(help_text="The step's headline flag (the total's where it has one).")
    kind = serializers.ChoiceField(choices=Flag.Kind.choices)
    session = serializers.IntegerField()
    words = serializers.CharField(help_text='The step in plain words ("not back by session 11").')
    title = serializers.CharField()
    scales = serializers.ListField(
        child=serializers.CharField(), help_text="Its scales where they differ from the event's; else empty."
    )
    rule = serializers.CharField(help_text='Its "How was this decided?" sentence.')


class FlagEventOutput(serializers.Serializer):
    """One event as the patient page shows it (monitoring.flags.events: a rupture and what
    followed it is one story): the headline flag, every other flag of the event, the words, its
    steps, and whether it still counts for the caseload."""

    code = serializers.UUIDField(help_text="The headline flag (acknowledge this one).")
    kind = serializers.ChoiceField(choices=Flag.Kind.choices)
    session = serializers.IntegerField()
    scales = serializers.ListField(child=serializers.CharField())
    other_flags = serializers.ListField(
        child=serializers.UUIDField(),
        help_text="Every other flag of the event, on every scale and step (acknowledged with it).",
    )
    title = serializers.CharField()
    tone = serializers.CharField()
    meaning = serializers.CharField()
    prompt = serializers.CharField()
    rule = serializers.CharField()
    counts = serializers.BooleanField(help_text="Still counts for the caseload's attention.")
    acknowledgement = serializers.CharField()
    acknowledged_note = serializers.CharField()
    story = serializers.CharField(
        help_text="A rupture's story in plain words (its steps, in order); empty for an event of one kind."
    )
    steps = FlagStepOutput(many=True)


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
    symptoms = SymptomCourseOutput(many=True, help_text="Each symptom measure answered in the episode.")
    safety_open = serializers.BooleanField(help_text="A safety alert of the episode awaits its follow-up.")
    safety_alerts = SafetyAlertOutput(many=True, help_text="Every safety alert of the episode, newest first.")


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
    level = serializers.FloatField(
        allow_null=True,
        help_text="The usual level: the prospective baseline (mean of the earlier sessions outside "
        "ruptures) the latest total and the flags are compared with; null before a second session.",
    )
    provisional = serializers.BooleanField(help_text="The usual level rests on fewer than 3 sessions.")
    deviation = serializers.CharField(
        help_text="The latest total against the usual level, in the patient's spread: 'well below "
        "usual' ... 'well above usual', '' without a usual level."
    )
    badges = BadgeOutput(many=True)
    pattern = serializers.CharField()
    priority = serializers.IntegerField(help_text="Lower is more urgent; 9 means nothing needs attention.")
    reason = serializers.CharField()
    safety = serializers.BooleanField(help_text="A safety alert awaits its follow-up (the row comes first).")
    symptoms = serializers.SerializerMethodField()

    @extend_schema_field(SymptomStatusOutput(many=True))
    def get_symptoms(self, row: Any) -> list[dict[str, Any]]:
        return symptom_statuses(row.outcomes)


class CaseloadFilter(serializers.Serializer):
    therapist = serializers.UUIDField(required=False, help_text="Admins: one therapist's caseload.")
    q = serializers.CharField(required=False, max_length=60)


# --- Instruments and FHIR ------------------------------------------------------------------------
