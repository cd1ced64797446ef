"""What every API view shares: the base view (the token's user is the audit trail's actor;
lists paginated one way), input validation, the serializer context, the audit of reads, the
lookups that start every view (404 for anything the user may not see, narrowed to the token's
clinic), and the JSON 404 for any other path under /api/."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast
from uuid import UUID

from auditlog.context import auditlog_value
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinics.models import Clinic, Membership, Patient, Session
from clinics.permissions import require_may_change
from clinics.selectors import patient_get_for_user, session_get_for_user
from monitoring.api.auth import (
    ApiPagination,
    FhirJsonDstu2Renderer,
    FhirJsonRenderer,
    in_scope,
    memberships_for,
    require_admin,
    token_of,
    user_of,
)
from monitoring.exports.fhir import operation_outcome
from monitoring.flags.selectors import flag_get_for_user
from monitoring.models import Flag
from monitoring.security.audit import VIA_API, access_log, access_log_list

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


class FhirApiView(ApiView):
    # A FHIR endpoint: answers application/fhir+json, application/json+fhir or application/json,
    # and its errors are OperationOutcomes (the API's error code in issue.details).
    renderer_classes = [FhirJsonRenderer, FhirJsonDstu2Renderer, JSONRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        error = response.data.get("error") if isinstance(response.data, dict) else None
        error = error if isinstance(error, dict) else {}
        response.data = operation_outcome(
            status=response.status_code,
            code=str(error.get("code") or ""),
            message=str(error.get("message") or ""),
        )
        return response


def valid_input(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validated input, or a 400 naming the fields. Query strings are passed as plain dicts, so
    that ``?therapist=`` is an invalid code rather than (DRF's reading of a form) no filter."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def serializer_context(request: Request) -> dict[str, Any]:
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


def clinic_for(request: Request, code: UUID | None, *, admin_for: str | None) -> Clinic:
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


def therapist_for(clinic: Clinic, code: UUID, field: str) -> Membership:
    """An active therapist of the clinic by membership code: whom the admin pages offer as a
    patient's therapist or as an export filter."""
    membership = (
        Membership.objects.therapists().filter(clinic=clinic, code=code).select_related("user").first()
    )
    if membership is None:
        raise exceptions.ValidationError({field: ["No active therapist of this clinic has this code."]})
    return membership


# The lookups: 404 for anything the user may not see (or outside the token's clinic). With
# ``change`` (what the request does, in words), 403 for a patient the user may see but not change
# (a supervisor, read-only), as the pages answer.


def patient_for(request: Request, code: object, *, change: str = "") -> Patient:
    patient = patient_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=patient.clinic_id)
    if change:
        require_may_change(user=user_of(request), patient=patient, action=change)
    return patient


def session_for(request: Request, code: object, *, change: str = "") -> Session:
    session = session_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=session.episode.patient.clinic_id)
    if change:
        require_may_change(user=user_of(request), patient=session.episode.patient, action=change)
    return session


def flag_for(request: Request, code: object, *, change: str = "") -> Flag:
    flag = flag_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=flag.episode.patient.clinic_id)
    if change:
        require_may_change(user=user_of(request), patient=flag.episode.patient, action=change)
    return flag


def membership_user(request: Request, code: UUID) -> tuple[int, int] | None:
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


class NotFoundApi(APIView):
    """Any other path under /api/: the JSON 404 of the API, not the HTML page of the site."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @staticmethod
    def _fhir(request: Any) -> bool:
        # A FHIR endpoint's address that does not resolve (a rater or version that cannot be):
        # its 404 is an OperationOutcome, as the endpoint's own errors are (FhirApiView).
        return str(request.path).rstrip("/").endswith("/fhir")

    def get_renderers(self) -> list[Any]:
        if self._fhir(self.request):
            return [renderer() for renderer in FhirApiView.renderer_classes]
        return super().get_renderers()

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if self._fhir(self.request):
            error = response.data.get("error") if isinstance(response.data, dict) else None
            error = error if isinstance(error, dict) else {}
            response.data = operation_outcome(
                status=response.status_code,
                code=str(error.get("code") or ""),
                message=str(error.get("message") or ""),
            )
        return response

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise Http404

    post = put = patch = delete = get
