"""Patients, their episodes of care, and what the patient page shows as data (the analysis)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from clinics import services as clinic_services
from clinics.models import Episode, patient_search
from monitoring.api import serializers as s
from monitoring.api.auth import (
    patients_for,
    require_admin,
    user_of,
)
from monitoring.api.idempotency import IDEMPOTENCY_KEY, idempotent
from monitoring.api.views.base import (
    ApiView,
    audit_access,
    audit_list,
    clinic_for,
    membership_user,
    patient_for,
    serializer_context,
    therapist_for,
    valid_input,
)
from monitoring.care.selectors import patient_dashboard


class PatientListApi(ApiView):
    @extend_schema(
        operation_id="patients_list",
        parameters=[s.PatientFilter],
        responses=s.PatientOutput(many=True),
        tags=["patients"],
    )
    def get(self, request: Request) -> Response:
        """The patients you may see: a therapist their own, an admin their clinic's."""
        filters = valid_input(s.PatientFilter, request.query_params.dict())
        patients = patients_for(request).select_related("clinic", "therapist")
        patients = patients.filter(patient_search(filters.get("q", "")))
        if filters.get("external_id"):
            patients = patients.filter(external_id=filters["external_id"])
        if "active" in filters:
            patients = patients.filter(is_active=filters["active"])
        if filters.get("therapist"):
            found = membership_user(request, filters["therapist"])
            patients = (
                patients.filter(therapist_id=found[0], clinic_id=found[1]) if found else patients.none()
            )
        rows = self.page(request, patients.order_by("label", "pk"))
        audit_list(request, what="patient list", patients=rows)
        return self.paged(s.PatientOutput(rows, many=True, context=serializer_context(request)).data)

    @extend_schema(
        operation_id="patients_create",
        request=s.PatientCreateInput,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.PatientOutput},
        tags=["patients"],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        """Add a patient (clinic admins, as on the clinic's patients page)."""
        data = valid_input(s.PatientCreateInput, request.data)
        clinic = clinic_for(request, data.get("clinic"), admin_for="add patients")
        therapist = therapist_for(clinic, data["therapist"], "therapist")
        patient = clinic_services.patient_create(
            clinic=clinic,
            therapist=therapist.user,
            label=data["label"],
            external_id=data["external_id"],
            language=data.get("language") or clinic.default_language,
            contact_email=data.get("contact_email", ""),
            contact_phone=data["contact_phone"],
        )
        return Response(
            s.PatientOutput(patient, context=serializer_context(request)).data, status=status.HTTP_201_CREATED
        )


class PatientDetailApi(ApiView):
    @extend_schema(operation_id="patients_retrieve", responses=s.PatientOutput, tags=["patients"])
    def get(self, request: Request, code: str) -> Response:
        """One patient: their details, clinic and therapist."""
        patient = patient_for(request, code)
        audit_access(request, instance=patient, what="patient")
        return Response(s.PatientOutput(patient, context=serializer_context(request)).data)

    @extend_schema(
        operation_id="patients_update",
        request=s.PatientUpdateInput,
        responses=s.PatientOutput,
        tags=["patients"],
    )
    def patch(self, request: Request, code: str) -> Response:
        """Change a patient's details (clinic admins). Fields left out keep their value."""
        patient = patient_for(request, code)
        require_admin(request, clinic=patient.clinic, action="change patient details")
        data = valid_input(s.PatientUpdateInput, request.data)
        fields = ("label", "external_id", "language", "contact_email", "contact_phone")
        patient = clinic_services.patient_update(
            patient=patient, **{f: data.get(f, getattr(patient, f)) for f in fields}
        )
        return Response(s.PatientOutput(patient, context=serializer_context(request)).data)


class PatientAnalysisApi(ApiView):
    @extend_schema(operation_id="patients_analysis", responses=s.AnalysisOutput, tags=["analysis"])
    def get(self, request: Request, code: str) -> Response:
        """What the patient page shows: levels, session rows with scores and answers, flags with
        their reasons and prompts, and the pattern, for the patient's latest episode; with the
        symptom measures' course (band, reliable change, not on track against the expected
        course) and the episode's safety alerts (``safety_open`` while one awaits its follow-up)."""
        patient_for(request, code)
        d = patient_dashboard(user=user_of(request), code=code)
        audit_access(request, instance=d.patient, what="patient analysis")
        symptoms: dict[int, dict[str, float]] = {}
        for measure, course in d.outcomes.courses.items():
            for number, score in course.scores:
                symptoms.setdefault(number, {})[measure] = score
        data = {
            "patient": d.patient,
            "episode": d.episode,
            "levels": [s.level_row(row) for row in d.levels.values()],
            "sessions": [
                {
                    "code": row.session.code,
                    "number": row.session.number,
                    "date": row.session.date,
                    "status": row.session.status,
                    "scores": {scale: row.scores.get(scale) for scale in s.SCALES},
                    "symptoms": symptoms.get(row.session.number, {}),
                    "patient_answers": [
                        {"item": k, "value": v} for k, v in sorted(row.patient_answers.items())
                    ],
                    "therapist_answers": [
                        {"item": k, "value": v} for k, v in sorted(row.therapist_answers.items())
                    ],
                }
                for row in d.sessions
            ],
            "flags": [
                {
                    "code": v.flag.code,
                    "kind": v.flag.kind,
                    "session": v.flag.session.number,
                    "scales": v.scales,
                    "other_flags": [f.code for f in v.others],
                    "title": v.title,
                    "tone": v.tone,
                    "meaning": v.meaning,
                    "prompt": v.prompt,
                    "rule": v.rule,
                    "counts": v.counts,
                    "acknowledgement": v.flag.acknowledgement,
                    "acknowledged_note": v.flag.acknowledged_note,
                    "story": v.told if v.story else "",
                    "steps": [
                        {
                            "code": step.flag.code,
                            "kind": step.kind,
                            "session": step.flag.session.number,
                            "words": step.words,
                            "title": step.title,
                            "scales": step.scales,
                            "rule": step.rule,
                        }
                        for step in v.steps
                    ],
                }
                for v in d.flags
            ],
            "pattern": d.pattern,
            "symptoms": s.symptom_statuses(d.outcomes, with_scores=True),
            "safety_open": bool(d.outcomes.safety),
            "safety_alerts": d.alerts,
        }
        return Response(s.AnalysisOutput(data, context=serializer_context(request)).data)


def _episodes(request: Request) -> QuerySet[Episode]:
    return Episode.objects.filter(patient__in=patients_for(request)).select_related(
        "patient__clinic", "therapist"
    )


class PatientEpisodesApi(ApiView):
    @extend_schema(operation_id="episodes_list", responses=s.EpisodeOutput(many=True), tags=["episodes"])
    def get(self, request: Request, code: str) -> Response:
        """The patient's episodes of care, newest first."""
        patient = patient_for(request, code)
        rows = self.page(request, _episodes(request).filter(patient=patient).order_by("-started_on", "-pk"))
        audit_access(request, instance=patient, what="episode list")
        return self.paged(s.EpisodeOutput(rows, many=True, context=serializer_context(request)).data)

    @extend_schema(
        operation_id="episodes_create",
        request=s.EpisodeInput,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.EpisodeOutput},
        tags=["episodes"],
    )
    @idempotent()
    def post(self, request: Request, code: str) -> Response:
        """Open an episode of care with the patient's therapist (clinic admins). One at a time."""
        patient = patient_for(request, code)
        require_admin(request, clinic=patient.clinic, action="open episodes of care")
        data = valid_input(s.EpisodeInput, request.data)
        episode = clinic_services.episode_open(
            patient=patient, started_on=data["started_on"], treatment=data["treatment"]
        )
        episode = _episodes(request).get(pk=episode.pk)
        return Response(
            s.EpisodeOutput(episode, context=serializer_context(request)).data, status=status.HTTP_201_CREATED
        )


class EpisodeDetailApi(ApiView):
    @extend_schema(operation_id="episodes_retrieve", responses=s.EpisodeOutput, tags=["episodes"])
    def get(self, request: Request, code: str) -> Response:
        """One episode of care."""
        episode = get_object_or_404(_episodes(request), code=code)
        audit_access(request, instance=episode.patient, what="episode", extra={"episode": str(episode.code)})
        return Response(s.EpisodeOutput(episode, context=serializer_context(request)).data)


class EpisodeCloseApi(ApiView):
    @extend_schema(
        operation_id="episodes_close",
        request=s.EpisodeCloseInput,
        responses=s.EpisodeOutput,
        tags=["episodes"],
    )
    def post(self, request: Request, code: str) -> Response:
        """End an episode of care (clinic admins). Its answers and flags stay."""
        episode = get_object_or_404(_episodes(request), code=code)
        require_admin(request, clinic=episode.patient.clinic, action="close episodes of care")
        data = valid_input(s.EpisodeCloseInput, request.data)
        episode = clinic_services.episode_close(episode=episode, on=data["on"])
        return Response(s.EpisodeOutput(episode, context=serializer_context(request)).data)
