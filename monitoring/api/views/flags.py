"""The caseload as data, and flags with their acknowledgement."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.errors import ApplicationError
from monitoring.api import serializers as s
from monitoring.api.auth import (
    clinic_scope,
    scoped,
    user_of,
)
from monitoring.api.views.base import (
    CONFLICT,
    ApiView,
    audit_access,
    audit_list,
    flag_for,
    membership_user,
    serializer_context,
    valid_input,
)
from monitoring.care.selectors import caseload_for_user
from monitoring.flags.selectors import flags_visible_to
from monitoring.flags.services import flag_acknowledge, flag_unacknowledge
from monitoring.models import Flag


def _flags(queryset: QuerySet[Flag]) -> QuerySet[Flag]:
    return queryset.select_related("episode__patient__clinic", "session", "acknowledged_by")


class CaseloadApi(ApiView):
    @extend_schema(
        operation_id="caseload",
        parameters=[s.CaseloadFilter],
        responses=s.CaseloadRowOutput(many=True),
        tags=["analysis"],
    )
    def get(self, request: Request) -> Response:
        """The caseload page as data: active patients, most in need of attention first (an open
        safety alert before anything else), with the reason in words, and where each symptom
        measure stands (latest score, band, change, reliable change, not on track)."""
        filters = valid_input(s.CaseloadFilter, request.query_params.dict())
        therapist_id = None
        if filters.get("therapist"):
            found = membership_user(request, filters["therapist"])
            therapist_id = found[0] if found else -1  # an unknown code matches nobody
        rows = caseload_for_user(user=user_of(request), therapist_id=therapist_id, query=filters.get("q", ""))
        scope = clinic_scope(request)
        page = self.page(request, [r for r in rows if scope is None or r.patient.clinic_id == scope])
        audit_list(request, what="caseload", patients=[r.patient for r in page])
        return self.paged(s.CaseloadRowOutput(page, many=True, context=serializer_context(request)).data)


class FlagListApi(ApiView):
    @extend_schema(
        operation_id="flags_list",
        parameters=[s.FlagFilter],
        responses=s.FlagOutput(many=True),
        tags=["flags"],
    )
    def get(self, request: Request) -> Response:
        """Flags of the patients you may see, newest first."""
        filters = valid_input(s.FlagFilter, request.query_params.dict())
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
        if "alarm" in filters:
            flags = flags.filter(alarm=filters["alarm"])
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
        flag = flag_for(request, code)
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
        flag = flag_for(request, code, change="acknowledge flags")
        data = valid_input(s.FlagAcknowledgeInput, request.data)
        done = flag_acknowledge(
            flag=flag, user=user_of(request), acknowledgement=data["acknowledgement"], note=data["note"]
        )
        if not done:
            raise ApplicationError("This flag has been acknowledged already.", code="acknowledged")
        rows = _flags(Flag.objects.filter(pk__in=[f.pk for f in done])).order_by("scale")
        return Response(s.FlagAcknowledgedOutput({"acknowledged": rows}).data)


class FlagUnacknowledgeApi(ApiView):
    @extend_schema(
        operation_id="flags_unacknowledge",
        request=None,
        responses={200: s.FlagReopenedOutput},
        tags=["flags"],
    )
    def post(self, request: Request, code: str) -> Response:
        """Undo an acknowledgement: the event (on every scale it showed on) is open again and
        counts for the caseload as before while it is recent. Recorded in the audit trail.
        Idempotent: on an open flag nothing changes and ``reopened`` is empty."""
        flag = flag_for(request, code, change="undo acknowledgements")
        done = flag_unacknowledge(flag=flag, user=user_of(request))
        rows = _flags(Flag.objects.filter(pk__in=[f.pk for f in done])).order_by("scale")
        return Response(s.FlagReopenedOutput({"reopened": rows}).data)
