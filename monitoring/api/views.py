"""REST API v1: thin views over the selectors, services and exporters the pages use.

Each view starts as a page does, with a selector that is 404 for anything the user may not see,
narrowed to the token's clinic (``monitoring.api.auth``); writes call the same services as the
pages; output goes through the plain serializers of ``monitoring.api.serializers``. Nothing here
decides who may see what. Reads of patient data write an ACCESS entry in the audit trail
(:func:`audit_access`). docs/api.md shows each integration task with curl.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast
from uuid import UUID

from auditlog.context import auditlog_value
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.questionnaire import Questionnaire
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Membership, Patient, Session
from clinics.permissions import clinics_administered
from clinics.selectors import patient_get_for_user, session_get_for_user
from monitoring.api import serializers as s
from monitoring.api.auth import (
    ApiPagination,
    FhirJsonRenderer,
    FirstRendererNegotiation,
    SessionOnly,
    clinic_scope,
    in_scope,
    memberships_for,
    patients_for,
    require_admin,
    scoped,
    token_of,
    user_of,
)
from monitoring.care.selectors import caseload_for_user, patient_dashboard
from monitoring.collection import links
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import response_enter
from monitoring.collection.sessions import session_add, session_update
from monitoring.exports import EXPORTS, ExportFilters, fhir
from monitoring.exports import jobs as export_jobs
from monitoring.exports import services as export_services
from monitoring.flags.selectors import flag_get_for_user, flags_visible_to
from monitoring.flags.services import flag_acknowledge
from monitoring.instruments.scores import response_scores
from monitoring.models import ApiToken, ExportJob, Flag, Instrument, Invitation, Rater
from monitoring.models import Response as FormResponse
from monitoring.security.audit import VIA_API, access_log, access_log_list
from monitoring.security.tokens import api_token_create, api_token_revoke

FHIR_JSON = "application/fhir+json"


class ApiView(APIView):
    # Base of every API view: the token's user becomes the audit trail's actor (the auditlog
    # middleware only knows session users), and lists are paginated the same way. (A comment,
    # not a docstring: drf-spectacular would show a docstring as every operation's description.)

    pagination_class: type[BasePagination] = ApiPagination

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        context = auditlog_value.get(None)
        if context is not None and context.get("actor") is None and request.user.is_authenticated:
            context["actor"] = request.user  # for a token, the middleware saw nobody

    def page(self, request: Request, rows: QuerySet[Any] | Sequence[Any]) -> list[Any]:
        self.paginator = self.pagination_class()
        # DRF's paginators take any sized sequence, though the stubs say QuerySet.
        return list(self.paginator.paginate_queryset(cast(QuerySet[Any], rows), request, view=self) or [])

    def paged(self, data: Any) -> Response:
        return self.paginator.get_paginated_response(data)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validated input, or a 400 naming the fields. Query strings are passed as plain dicts, so
    that ``?therapist=`` is an invalid code rather than (DRF's reading of a form) no filter."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _context(request: Request) -> dict[str, Any]:
    """Serializer context: the request, and the membership codes of the staff of the requester's
    clinics (one query; staff are named by membership code, never by user id)."""
    clinics = memberships_for(request).values("clinic_id")
    staff = {
        (user_id, clinic_id): code
        for user_id, clinic_id, code in Membership.objects.filter(clinic_id__in=clinics).values_list(
            "user_id", "clinic_id", "code"
        )
    }
    return {"request": request, "staff": staff}


# --- Audit ---------------------------------------------------------------------------------------


def audit_access(request: Request, *, instance: Any, what: str, extra: dict[str, Any] | None = None) -> None:
    """One ACCESS entry for an API read of patient data (monitoring.security.audit), naming the token."""
    token = token_of(request)
    access_log(
        actor=user_of(request),
        instance=instance,
        what=what,
        via=VIA_API,
        path=request.path,
        extra={"token": str(token.code) if token else None, **(extra or {})},
    )


def audit_list(request: Request, *, what: str, patients: Iterable[Patient]) -> None:
    """A list read: one entry per clinic on the page, naming the patients it showed."""
    token = token_of(request)
    access_log_list(
        actor=user_of(request),
        what=what,
        patients=patients,
        via=VIA_API,
        path=request.path,
        extra={"token": str(token.code) if token else None},
    )


# --- Helpers -------------------------------------------------------------------------------------


def _clinic_for(request: Request, code: UUID | None, *, admin_for: str | None) -> Clinic:
    """The clinic a write is for: the one named in the body (among the requester's clinics, so
    within a token's), else the only one that fits. ``admin_for`` requires an admin there (403)."""
    memberships = list(memberships_for(request))
    if code is not None:
        match = [m for m in memberships if m.clinic.code == code]
        if not match:
            raise exceptions.ValidationError({"clinic": ["You do not work in a clinic with this code."]})
        clinic = match[0].clinic
    else:
        admins = [m for m in memberships if m.role == Membership.Role.ADMIN]
        candidates = admins if admin_for and admins else memberships
        if not candidates:
            raise exceptions.PermissionDenied("You do not work in any clinic.")
        if len(candidates) > 1:
            raise exceptions.ValidationError(
                {"clinic": ["You work in several clinics: give the clinic's code."]}
            )
        clinic = candidates[0].clinic
    if admin_for:
        require_admin(request, clinic=clinic, action=admin_for)
    return clinic


def _therapist(clinic: Clinic, code: UUID, field: str) -> Membership:
    """An active therapist of the clinic by membership code: whom the admin pages offer as a
    patient's therapist or as an export filter."""
    membership = (
        Membership.objects.therapists().filter(clinic=clinic, code=code).select_related("user").first()
    )
    if membership is None:
        raise exceptions.ValidationError({field: ["No active therapist of this clinic has this code."]})
    return membership


def _patient(request: Request, code: object) -> Patient:
    patient = patient_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=patient.clinic_id)
    return patient


def _session(request: Request, code: object) -> Session:
    session = session_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=session.episode.patient.clinic_id)
    return session


def _flag(request: Request, code: object) -> Flag:
    flag = flag_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=flag.episode.patient.clinic_id)
    return flag


def _with_responses(sessions: QuerySet[Session]) -> QuerySet[Session]:
    return sessions.annotate(
        patient_response=Exists(FormResponse.objects.filter(session=OuterRef("pk"), rater=Rater.PATIENT)),
        therapist_response=Exists(FormResponse.objects.filter(session=OuterRef("pk"), rater=Rater.THERAPIST)),
    ).select_related("episode__patient__clinic")


def _form_link(invitation: Invitation | None, token: str | None = None) -> dict[str, Any] | None:
    if invitation is None:
        return None
    return {
        "url": links.form_url(token or links.token_for_salt(invitation.salt)),
        "expires_at": invitation.expires_at,
    }


def _session_out(session: Session, link: tuple[Invitation, str] | None = None) -> dict[str, Any]:
    """One session with its open form link: the one just made, else the newest usable one (as the
    session page shows it)."""
    fresh = _with_responses(Session.objects.filter(pk=session.pk)).get()
    if link is None:
        current = session.invitations.usable().order_by("-created_at").first()
        form_link = _form_link(current)
    else:
        form_link = _form_link(*link)
    return {**s.SessionOutput(fresh).data, "form_link": form_link and s.FormLinkOutput(form_link).data}


def _responses() -> QuerySet[FormResponse]:
    return FormResponse.objects.select_related(
        "session__episode__patient__clinic", "instrument", "entered_by"
    ).prefetch_related("answers__item")


def _response(request: Request, code: object, rater: str) -> FormResponse:
    session = _session(request, code)
    return get_object_or_404(_responses(), session=session, rater=rater)


def _flags(queryset: QuerySet[Flag]) -> QuerySet[Flag]:
    return queryset.select_related("episode__patient__clinic", "session", "acknowledged_by")


def _membership_user(request: Request, code: UUID) -> tuple[int, int] | None:
    """(user id, clinic id) of a membership in the requester's clinics, for filters."""
    found = (
        Membership.objects.filter(code=code, clinic_id__in=memberships_for(request).values("clinic_id"))
        .values_list("user_id", "clinic_id")
        .first()
    )
    return found


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """How the OpenAPI schema describes token authentication (defined here, where the URLs import
    it before any schema is generated)."""

    target_class = "monitoring.api.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bdn_<prefix>_<secret>",
            "description": "A personal API token, scoped to one clinic (POST /api/v1/tokens/).",
        }


RATER = OpenApiParameter("rater", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["patient", "therapist"])
CONFLICT = OpenApiResponse(description="Conflict")


# --- Identity and tokens -------------------------------------------------------------------------


class MeApi(ApiView):
    @extend_schema(operation_id="me", responses=s.MeOutput, tags=["identity"])
    def get(self, request: Request) -> Response:
        """Who you are, how you signed in, and the clinics (one, for a token) you work in."""
        token = token_of(request)
        user = user_of(request)
        data = {
            "email": user.email,
            "name": user.get_full_name() or user.email,
            "authenticated_by": "token" if token else "session",
            "token": token,
            "memberships": memberships_for(request).order_by("clinic__name"),
        }
        return Response(s.MeOutput(data).data)


def tokens_visible_to(request: Request) -> QuerySet[ApiToken]:
    """Your own tokens, and every token of the clinics you administer (within a token's clinic)."""
    admin_clinics = [c.pk for c in clinics_administered(user=user_of(request))]
    tokens = ApiToken.objects.filter(Q(user_id=user_of(request).pk) | Q(clinic_id__in=admin_clinics))
    return scoped(request, tokens, clinic_field="clinic_id").select_related("user", "clinic")


class TokenListApi(ApiView):
    permission_classes = [IsAuthenticated, SessionOnly]

    @extend_schema(operation_id="tokens_list", responses=s.TokenOutput(many=True), tags=["identity"])
    def get(self, request: Request) -> Response:
        """Your API tokens; admins also see their clinic's. The tokens themselves are never shown."""
        rows = self.page(request, tokens_visible_to(request).order_by("-created_at"))
        return self.paged(s.TokenOutput(rows, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        request=s.TokenInput,
        responses={201: s.TokenCreatedOutput},
        tags=["identity"],
    )
    def post(self, request: Request) -> Response:
        """Create a token for yourself in one of your clinics. Only from a signed-in browser
        session. The response is the only time the token is shown."""
        data = _valid(s.TokenInput, request.data)
        clinic = _clinic_for(request, data.get("clinic"), admin_for=None)
        token, secret = api_token_create(
            user=user_of(request), clinic=clinic, name=data["name"], expires_at=data["expires_at"]
        )
        return Response({**s.TokenOutput(token).data, "token": secret}, status=status.HTTP_201_CREATED)


class TokenDetailApi(ApiView):
    @extend_schema(operation_id="tokens_revoke", responses={204: None}, tags=["identity"])
    def delete(self, request: Request, code: str) -> Response:
        """Revoke a token (yours, or any of your clinic's if you are its admin). It stops working
        at once; revoking twice is not an error."""
        token = get_object_or_404(tokens_visible_to(request), code=code)
        api_token_revoke(token=token, by=user_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class StaffListApi(ApiView):
    @extend_schema(operation_id="staff_list", responses=s.StaffOutput(many=True), tags=["identity"])
    def get(self, request: Request) -> Response:
        """The staff you can assign patients to or filter by: a clinic's active staff for its
        admins, yourself otherwise."""
        mine = memberships_for(request)
        admin_clinics = mine.filter(role=Membership.Role.ADMIN).values("clinic_id")
        rows = (
            Membership.objects.active()
            .filter(Q(clinic_id__in=admin_clinics) | Q(pk__in=mine.values("pk")))
            .select_related("user", "clinic")
            .order_by("clinic__name", "user__last_name", "user__first_name", "pk")
        )
        page = self.page(request, rows)
        data = [
            {
                "code": m.code,
                "name": m.user.get_full_name() or m.user.email,
                "email": m.user.email,
                "role": m.role,
                "clinic": m.clinic,
            }
            for m in page
        ]
        return self.paged(s.StaffOutput(data, many=True).data)


# --- Patients ------------------------------------------------------------------------------------


class PatientListApi(ApiView):
    @extend_schema(
        operation_id="patients_list",
        parameters=[s.PatientFilter],
        responses=s.PatientOutput(many=True),
        tags=["patients"],
    )
    def get(self, request: Request) -> Response:
        """The patients you may see: a therapist their own, an admin their clinic's."""
        filters = _valid(s.PatientFilter, request.query_params.dict())
        patients = patients_for(request).select_related("clinic", "therapist")
        patients = patients.search(filters.get("q", ""))
        if filters.get("external_id"):
            patients = patients.filter(external_id=filters["external_id"])
        if "active" in filters:
            patients = patients.filter(is_active=filters["active"])
        if filters.get("therapist"):
            found = _membership_user(request, filters["therapist"])
            patients = (
                patients.filter(therapist_id=found[0], clinic_id=found[1]) if found else patients.none()
            )
        rows = self.page(request, patients.order_by("label", "pk"))
        audit_list(request, what="patient list", patients=rows)
        return self.paged(s.PatientOutput(rows, many=True, context=_context(request)).data)

    @extend_schema(
        operation_id="patients_create",
        request=s.PatientCreateInput,
        responses={201: s.PatientOutput},
        tags=["patients"],
    )
    def post(self, request: Request) -> Response:
        """Add a patient (clinic admins, as on the clinic's patients page)."""
        data = _valid(s.PatientCreateInput, request.data)
        clinic = _clinic_for(request, data.get("clinic"), admin_for="add patients")
        therapist = _therapist(clinic, data["therapist"], "therapist")
        patient = clinic_services.patient_create(
            clinic=clinic,
            therapist=therapist.user,
            label=data["label"],
            external_id=data["external_id"],
            language=data.get("language") or clinic.default_language,
            contact_email=data["contact_email"],
            contact_phone=data["contact_phone"],
        )
        return Response(
            s.PatientOutput(patient, context=_context(request)).data, status=status.HTTP_201_CREATED
        )


class PatientDetailApi(ApiView):
    @extend_schema(operation_id="patients_retrieve", responses=s.PatientOutput, tags=["patients"])
    def get(self, request: Request, code: str) -> Response:
        """One patient: their details, clinic and therapist."""
        patient = _patient(request, code)
        audit_access(request, instance=patient, what="patient")
        return Response(s.PatientOutput(patient, context=_context(request)).data)

    @extend_schema(
        operation_id="patients_update",
        request=s.PatientUpdateInput,
        responses=s.PatientOutput,
        tags=["patients"],
    )
    def patch(self, request: Request, code: str) -> Response:
        """Change a patient's details (clinic admins). Fields left out keep their value."""
        patient = _patient(request, code)
        require_admin(request, clinic=patient.clinic, action="change patient details")
        data = _valid(s.PatientUpdateInput, request.data)
        fields = ("label", "external_id", "language", "contact_email", "contact_phone")
        patient = clinic_services.patient_update(
            patient=patient, **{f: data.get(f, getattr(patient, f)) for f in fields}
        )
        return Response(s.PatientOutput(patient, context=_context(request)).data)


class PatientAnalysisApi(ApiView):
    @extend_schema(operation_id="patients_analysis", responses=s.AnalysisOutput, tags=["analysis"])
    def get(self, request: Request, code: str) -> Response:
        """What the patient page shows: levels, session rows with scores and answers, flags with
        their reasons and prompts, and the pattern, for the patient's latest episode."""
        _patient(request, code)
        d = patient_dashboard(user=user_of(request), code=code)
        audit_access(request, instance=d.patient, what="patient analysis")
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
                }
                for v in d.flags
            ],
            "pattern": d.pattern,
        }
        return Response(s.AnalysisOutput(data, context=_context(request)).data)


# --- Episodes ------------------------------------------------------------------------------------


def _episodes(request: Request) -> QuerySet[Episode]:
    return Episode.objects.filter(patient__in=patients_for(request)).select_related(
        "patient__clinic", "therapist"
    )


class PatientEpisodesApi(ApiView):
    @extend_schema(operation_id="episodes_list", responses=s.EpisodeOutput(many=True), tags=["episodes"])
    def get(self, request: Request, code: str) -> Response:
        """The patient's episodes of care, newest first."""
        patient = _patient(request, code)
        rows = self.page(request, _episodes(request).filter(patient=patient).order_by("-started_on", "-pk"))
        audit_access(request, instance=patient, what="episode list")
        return self.paged(s.EpisodeOutput(rows, many=True, context=_context(request)).data)

    @extend_schema(
        operation_id="episodes_create",
        request=s.EpisodeInput,
        responses={201: s.EpisodeOutput},
        tags=["episodes"],
    )
    def post(self, request: Request, code: str) -> Response:
        """Open an episode of care with the patient's therapist (clinic admins). One at a time."""
        patient = _patient(request, code)
        require_admin(request, clinic=patient.clinic, action="open episodes of care")
        data = _valid(s.EpisodeInput, request.data)
        episode = clinic_services.episode_open(
            patient=patient, started_on=data["started_on"], treatment=data["treatment"]
        )
        episode = _episodes(request).get(pk=episode.pk)
        return Response(
            s.EpisodeOutput(episode, context=_context(request)).data, status=status.HTTP_201_CREATED
        )


class EpisodeDetailApi(ApiView):
    @extend_schema(operation_id="episodes_retrieve", responses=s.EpisodeOutput, tags=["episodes"])
    def get(self, request: Request, code: str) -> Response:
        """One episode of care."""
        episode = get_object_or_404(_episodes(request), code=code)
        audit_access(request, instance=episode.patient, what="episode", extra={"episode": str(episode.code)})
        return Response(s.EpisodeOutput(episode, context=_context(request)).data)


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
        data = _valid(s.EpisodeCloseInput, request.data)
        episode = clinic_services.episode_close(episode=episode, on=data["on"])
        return Response(s.EpisodeOutput(episode, context=_context(request)).data)


# --- Sessions ------------------------------------------------------------------------------------


class PatientSessionsApi(ApiView):
    @extend_schema(
        operation_id="sessions_create",
        request=s.SessionCreateInput,
        responses={201: s.SessionOutput},
        tags=["sessions"],
    )
    def post(self, request: Request, code: str) -> Response:
        """Add the next session of the patient's open episode, e.g. an appointment from the health
        record. With status "held" the patient's form link is created and returned."""
        patient = _patient(request, code)
        data = _valid(s.SessionCreateInput, request.data)
        session, link = session_add(
            patient=patient, on=data["date"], status=data["status"], user=user_of(request)
        )
        return Response(_session_out(session, link), status=status.HTTP_201_CREATED)


class SessionListApi(ApiView):
    @extend_schema(
        operation_id="sessions_list",
        parameters=[s.SessionFilter],
        responses=s.SessionOutput(many=True),
        tags=["sessions"],
    )
    def get(self, request: Request) -> Response:
        """Sessions of the patients you may see, newest first (form links only on one session's read)."""
        filters = _valid(s.SessionFilter, request.query_params.dict())
        sessions = _with_responses(Session.objects.filter(episode__patient__in=patients_for(request)))
        for name, lookup in (
            ("patient", "episode__patient__code"),
            ("episode", "episode__code"),
            ("status", "status"),
            ("date_from", "date__gte"),
            ("date_to", "date__lte"),
        ):
            if filters.get(name) is not None:
                sessions = sessions.filter(**{lookup: filters[name]})
        rows = self.page(request, sessions.order_by("-date", "-number", "pk"))
        audit_list(request, what="session list", patients=[r.episode.patient for r in rows])
        return self.paged(s.SessionOutput(rows, many=True).data)


class SessionDetailApi(ApiView):
    @extend_schema(operation_id="sessions_retrieve", responses=s.SessionOutput, tags=["sessions"])
    def get(self, request: Request, code: str) -> Response:
        """One session, with its open form link if there is one."""
        session = _session(request, code)
        audit_access(
            request, instance=session.episode.patient, what="session", extra={"session": str(session.code)}
        )
        return Response(_session_out(session))

    @extend_schema(
        operation_id="sessions_update",
        request=s.SessionUpdateInput,
        responses={200: s.SessionOutput, 409: CONFLICT},
        tags=["sessions"],
    )
    def patch(self, request: Request, code: str) -> Response:
        """Move an appointment or change its status. Becoming "held" creates the form link (a
        session held already keeps its link); cancelling withdraws open links, and is refused
        (409) once answers are in."""
        session = _session(request, code)
        data = _valid(s.SessionUpdateInput, request.data)
        link = session_update(
            session=session, user=user_of(request), on=data.get("date"), status=data.get("status")
        )
        return Response(_session_out(session, link))


class SessionLinkApi(ApiView):
    @extend_schema(
        operation_id="sessions_link_create",
        request=None,
        responses={201: s.FormLinkOutput, 409: CONFLICT},
        tags=["sessions"],
    )
    def post(self, request: Request, code: str) -> Response:
        """A fresh one-time form link for a held session; earlier links stop working. 409 once the
        patient's answers are in."""
        session = _session(request, code)
        invitation, token = invitation_create(session=session, created_by=user_of(request))
        return Response(s.FormLinkOutput(_form_link(invitation, token)).data, status=status.HTTP_201_CREATED)


# --- Responses -----------------------------------------------------------------------------------


class SessionResponsesApi(ApiView):
    @extend_schema(
        operation_id="responses_create",
        request=s.ResponseInput,
        responses={201: s.ResponseDetailOutput, 409: CONFLICT},
        tags=["responses"],
    )
    def post(self, request: Request, code: str) -> Response:
        """Enter a completed form on the patient's behalf (recorded as staff entry, with you as
        the one who entered it), or your own therapist rating. Every item must be answered; the
        session becomes held and the episode is analysed. 409 if this rater's answers are in."""
        session = _session(request, code)
        data = _valid(s.ResponseInput, request.data)
        try:
            response = response_enter(
                session=session,
                rater=data["rater"],
                answers={a["item"]: a["value"] for a in data["answers"]},
                user=user_of(request),
            )
        except ApplicationError as error:
            if error.problems:  # answers outside the instrument's items or scale, or missing
                raise exceptions.ValidationError({"answers": error.problems}) from error
            raise
        return Response(_response_detail(_responses().get(pk=response.pk)), status=status.HTTP_201_CREATED)


def _response_detail(response: FormResponse) -> dict[str, Any]:
    scores = s.ScoreOutput(response_scores(response=response), many=True).data
    return {**s.ResponseOutput(response).data, "scores": scores}


class ResponseDetailApi(ApiView):
    @extend_schema(
        operation_id="responses_retrieve",
        parameters=[RATER],
        responses=s.ResponseDetailOutput,
        tags=["responses"],
    )
    def get(self, request: Request, code: str, rater: str) -> Response:
        """One session's answers by the patient or the therapist, with item answers and scores."""
        response = _response(request, code, rater)
        audit_access(request, instance=response.session.episode.patient, what=f"{rater} response")
        return Response(_response_detail(response))


class ResponseFhirApi(ApiView):
    renderer_classes = [JSONRenderer, FhirJsonRenderer]  # errors in plain JSON unless asked

    @extend_schema(
        operation_id="responses_fhir",
        parameters=[RATER],
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
        tags=["fhir"],
    )
    def get(self, request: Request, code: str, rater: str) -> HttpResponse:
        """The response as a FHIR R4 QuestionnaireResponse (the same resource as in the FHIR
        bundle export: same id, identifiers and coding)."""
        response = _response(request, code, rater)
        patient = response.session.episode.patient
        audit_access(request, instance=patient, what=f"{rater} response (FHIR)")
        row = (
            response.pk,
            response.instrument_id,
            response.submitted_at,
            response.session.code,
            response.session.number,
            response.session.date,
            patient.code,
            patient.external_id,
        )
        coding = {
            response.instrument_id: fhir._AnswerCoding.of(
                response.instrument, patient.clinic.default_language
            )
        }
        entry, _ = next(
            fhir._response_entries([row], clinic=patient.clinic, filters=ExportFilters(), canonical=coding)
        )
        return HttpResponse(json.dumps(json.loads(entry)["resource"]), content_type=FHIR_JSON)


class ResponseListApi(ApiView):
    @extend_schema(
        operation_id="responses_list",
        parameters=[s.ResponseFilter],
        responses=s.ResponseOutput(many=True),
        tags=["responses"],
    )
    def get(self, request: Request) -> Response:
        """Completed forms of the patients you may see, newest first, with their item answers."""
        filters = _valid(s.ResponseFilter, request.query_params.dict())
        responses = _responses().filter(session__episode__patient__in=patients_for(request))
        for name, lookup in (
            ("patient", "session__episode__patient__code"),
            ("session", "session__code"),
            ("rater", "rater"),
            ("since", "submitted_at__gte"),
        ):
            if filters.get(name) is not None:
                responses = responses.filter(**{lookup: filters[name]})
        rows = self.page(request, responses.order_by("-submitted_at", "-pk"))
        audit_list(request, what="response list", patients=[r.session.episode.patient for r in rows])
        return self.paged(s.ResponseOutput(rows, many=True).data)


# --- Caseload and flags --------------------------------------------------------------------------


class CaseloadApi(ApiView):
    @extend_schema(
        operation_id="caseload",
        parameters=[s.CaseloadFilter],
        responses=s.CaseloadRowOutput(many=True),
        tags=["analysis"],
    )
    def get(self, request: Request) -> Response:
        """The caseload page as data: active patients, most in need of attention first, with the
        reason in words."""
        filters = _valid(s.CaseloadFilter, request.query_params.dict())
        therapist_id = None
        if filters.get("therapist"):
            found = _membership_user(request, filters["therapist"])
            therapist_id = found[0] if found else -1  # an unknown code matches nobody
        rows = caseload_for_user(user=user_of(request), therapist_id=therapist_id, query=filters.get("q", ""))
        scope = clinic_scope(request)
        page = self.page(request, [r for r in rows if scope is None or r.patient.clinic_id == scope])
        audit_list(request, what="caseload", patients=[r.patient for r in page])
        return self.paged(s.CaseloadRowOutput(page, many=True, context=_context(request)).data)


class FlagListApi(ApiView):
    @extend_schema(
        operation_id="flags_list",
        parameters=[s.FlagFilter],
        responses=s.FlagOutput(many=True),
        tags=["flags"],
    )
    def get(self, request: Request) -> Response:
        """Flags of the patients you may see, newest first."""
        filters = _valid(s.FlagFilter, request.query_params.dict())
        flags = scoped(
            request,
            flags_visible_to(user=user_of(request)),
            clinic_field="episode__patient__clinic_id",
        )
        for name, lookup in (
            ("patient", "episode__patient__code"),
            ("kind", "kind"),
            ("scale", "scale"),
            ("since", "created_at__gte"),
        ):
            if filters.get(name) is not None:
                flags = flags.filter(**{lookup: filters[name]})
        if "acknowledged" in filters:
            flags = (
                flags.exclude(acknowledgement="")
                if filters["acknowledged"]
                else flags.filter(acknowledgement="")
            )
        rows = self.page(request, _flags(flags).order_by("-created_at", "-session__number", "kind", "pk"))
        audit_list(request, what="flag list", patients=[f.episode.patient for f in rows])
        return self.paged(s.FlagOutput(rows, many=True).data)


class FlagDetailApi(ApiView):
    @extend_schema(operation_id="flags_retrieve", responses=s.FlagOutput, tags=["flags"])
    def get(self, request: Request, code: str) -> Response:
        """One flag with the numbers behind it and its acknowledgement."""
        flag = _flag(request, code)
        audit_access(request, instance=flag.episode.patient, what="flag", extra={"flag": str(flag.code)})
        return Response(s.FlagOutput(_flags(Flag.objects.filter(pk=flag.pk)).get()).data)


class FlagAcknowledgeApi(ApiView):
    @extend_schema(
        operation_id="flags_acknowledge",
        request=s.FlagAcknowledgeInput,
        responses={200: s.FlagAcknowledgedOutput, 409: CONFLICT},
        tags=["flags"],
    )
    def post(self, request: Request, code: str) -> Response:
        """Mark a flag's event as discussed with the patient or not relevant, with an optional
        note; the same event on the other scales is acknowledged with it. 409 if it was already."""
        flag = _flag(request, code)
        data = _valid(s.FlagAcknowledgeInput, request.data)
        done = flag_acknowledge(
            flag=flag, user=user_of(request), acknowledgement=data["acknowledgement"], note=data["note"]
        )
        if not done:
            raise ApplicationError("This flag has been acknowledged already.", code="acknowledged")
        rows = _flags(Flag.objects.filter(pk__in=[f.pk for f in done])).order_by("scale")
        return Response(s.FlagAcknowledgedOutput({"acknowledged": rows}).data)


# --- Instruments and FHIR ------------------------------------------------------------------------


def _instruments() -> QuerySet[Instrument]:
    return Instrument.objects.prefetch_related("items", "translations").order_by("code", "-version")


def _instrument_out(instrument: Instrument) -> dict[str, Any]:
    return {
        "code": instrument.code,
        "version": instrument.version,
        "rater": instrument.rater,
        "scale_min": instrument.scale_min,
        "scale_max": instrument.scale_max,
        "subscales": list(instrument.subscales),
        "languages": sorted(t.language for t in instrument.translations.all()),
        "items": sorted(instrument.items.all(), key=lambda i: i.number),
    }


class InstrumentListApi(ApiView):
    @extend_schema(
        operation_id="instruments_list", responses=s.InstrumentOutput(many=True), tags=["instruments"]
    )
    def get(self, request: Request) -> Response:
        """The questionnaires loaded, every version (answers point at the version they used)."""
        rows = self.page(request, _instruments())
        return self.paged(s.InstrumentOutput([_instrument_out(i) for i in rows], many=True).data)


class InstrumentDetailApi(ApiView):
    @extend_schema(operation_id="instruments_retrieve", responses=s.InstrumentOutput, tags=["instruments"])
    def get(self, request: Request, code: str, version: str) -> Response:
        """One instrument version: its scale, subscales and items."""
        instrument = get_object_or_404(_instruments(), code=code, version=version)
        return Response(s.InstrumentOutput(_instrument_out(instrument)).data)


class QuestionnaireApi(ApiView):
    renderer_classes = [JSONRenderer, FhirJsonRenderer]  # errors in plain JSON unless asked

    @extend_schema(
        operation_id="instruments_fhir",
        parameters=[s.LanguageQuery],
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
        tags=["fhir"],
    )
    def get(self, request: Request, code: str, version: str) -> HttpResponse:
        """The instrument as a FHIR R4 Questionnaire (as in the FHIR bundle export)."""
        language = _valid(s.LanguageQuery, request.query_params.dict())["language"]
        instrument = get_object_or_404(_instruments(), code=code, version=version)
        resource = fhir._validated(
            Questionnaire, fhir.questionnaire_resource(instrument=instrument, language=language)
        )
        return HttpResponse(resource, content_type=FHIR_JSON)


# --- Exports -------------------------------------------------------------------------------------


class ReportListApi(ApiView):
    @extend_schema(operation_id="exports_reports", responses=s.ReportOutput(many=True), tags=["exports"])
    def get(self, request: Request) -> Response:
        """The reports that can be exported, with their formats."""
        rows = self.page(request, [EXPORTS[k] for k in sorted(EXPORTS)])
        return self.paged(s.ReportOutput(rows, many=True).data)


def _export_jobs(request: Request) -> QuerySet[ExportJob]:
    jobs = ExportJob.objects.filter(clinic__in=Clinic.objects.administered_by(user_of(request)))
    return scoped(request, jobs, clinic_field="clinic_id").select_related("clinic")


class ExportListApi(ApiView):
    @extend_schema(operation_id="exports_list", responses=s.ExportJobOutput(many=True), tags=["exports"])
    def get(self, request: Request) -> Response:
        """Your clinic's export jobs, newest first (clinic admins; empty for anyone else)."""
        rows = self.page(request, _export_jobs(request).order_by("-created_at", "-pk"))
        return self.paged(s.ExportJobOutput(rows, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="exports_create",
        request=s.ExportInput,
        responses={202: s.ExportJobOutput},
        tags=["exports"],
    )
    def post(self, request: Request) -> Response:
        """Start an export (clinic admins). Answers 202 with the job; poll its status until it is
        done (then download it) or failed (with the reason)."""
        data = _valid(s.ExportInput, request.data)
        clinic = _clinic_for(request, data.get("clinic"), admin_for="export its data")
        therapist = _therapist(clinic, data["therapist"], "therapist") if data.get("therapist") else None
        filters = ExportFilters(
            start=data["start"],
            end=data["end"],
            therapist_id=therapist.user_id if therapist else None,
            treatment=data.get("treatment", ""),
            patient_code=str(data.get("patient") or ""),
            pseudonymise=data["pseudonymise"],
        )
        job = export_jobs.export_start(
            clinic=clinic,
            user=user_of(request),
            identifier=data["report"],
            fmt=data["format"],
            filters=filters,
        )
        job.refresh_from_db()
        body = s.ExportJobOutput(job, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/exports/{job.code}/"}
        )


def _export_job(request: Request, code: str) -> ExportJob:
    job = export_jobs.export_job_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=job.clinic_id)
    return job


class ExportDetailApi(ApiView):
    @extend_schema(operation_id="exports_retrieve", responses=s.ExportJobOutput, tags=["exports"])
    def get(self, request: Request, code: str) -> Response:
        """An export's status: queued, running (with progress), done (with its download URL) or
        failed (with the reason)."""
        return Response(s.ExportJobOutput(_export_job(request, code), context={"request": request}).data)


DOWNLOAD_TYPES = (
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/pdf",
    FHIR_JSON,
)


class ExportDownloadApi(ApiView):
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        operation_id="exports_download",
        responses={**{(200, t): OpenApiTypes.BINARY for t in DOWNLOAD_TYPES}, 409: CONFLICT},
        tags=["exports"],
    )
    def get(self, request: Request, code: str) -> FileResponse:
        """The finished export's file (audited). 409 while it is not done, or if it failed."""
        job = _export_job(request, code)
        try:
            path, filename, content_type = export_services.export_file(job=job)
        except ApplicationError as error:
            raise ApplicationError(error.message, code="not_ready") from error
        export_services.export_audit(
            clinic=job.clinic,
            actor=user_of(request),
            identifier=job.exporter,
            fmt=job.format,
            filters=ExportFilters.from_json(job.filters),
            via=export_services.VIA_API,
            job=job,
            event="download",
        )
        response = FileResponse(
            path.open("rb"), as_attachment=True, filename=filename, content_type=content_type
        )
        response["Cache-Control"] = "no-store"
        return response


# --- Fallback ------------------------------------------------------------------------------------


class NotFoundApi(APIView):
    """Any other path under /api/: the JSON 404 of the API, not the HTML page of the site."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise Http404

    post = put = patch = delete = get
