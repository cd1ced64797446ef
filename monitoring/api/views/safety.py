"""Safety alerts (a risk answer, PHQ-9 item 9 above 0) and the clinician's follow-up."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.permissions import require_may_change
from monitoring.api import serializers as s
from monitoring.api.auth import patients_for, user_of
from monitoring.api.views.base import CONFLICT, ApiView, audit_access, audit_list, valid_input
from monitoring.collection.safety import safety_follow_up
from monitoring.models import SafetyAlert


def _alerts(request: Request) -> QuerySet[SafetyAlert]:
    """The alerts of the patients the requester may see (within a token's clinic): anything else
    is 404, as the patient page's follow-up form is."""
    return SafetyAlert.objects.filter(episode__patient__in=patients_for(request)).select_related(
        "episode__patient__clinic", "session", "response", "followed_up_by"
    )


def _alert_for(request: Request, code: str) -> SafetyAlert:
    return get_object_or_404(_alerts(request), code=code)


class SafetyAlertListApi(ApiView):
    @extend_schema(
        operation_id="safety_alerts_list",
        parameters=[s.SafetyAlertFilter],
        responses=s.SafetyAlertOutput(many=True),
        tags=["safety"],
    )
    def get(self, request: Request) -> Response:
        """Safety alerts of the patients you may see, newest first: by default the open ones,
        which wait for a clinician to record what was done (``state=all`` for every alert)."""
        filters = valid_input(s.SafetyAlertFilter, request.query_params.dict())
        alerts = _alerts(request)
        if filters["state"] == "open":
            alerts = alerts.filter(followed_up_at=None)
        elif filters["state"] == "followed_up":
            alerts = alerts.exclude(followed_up_at=None)
        if filters.get("patient") is not None:
            alerts = alerts.filter(episode__patient__code=filters["patient"])
        if filters.get("since") is not None:
            alerts = alerts.filter(raised_at__gte=filters["since"])
        rows = self.page(request, alerts.order_by("-raised_at", "-pk"))
        audit_list(request, what="safety alert list", patients=[a.episode.patient for a in rows])
        return self.paged(s.SafetyAlertOutput(rows, many=True).data)


class SafetyAlertDetailApi(ApiView):
    @extend_schema(operation_id="safety_alerts_retrieve", responses=s.SafetyAlertOutput, tags=["safety"])
    def get(self, request: Request, code: str) -> Response:
        """One safety alert: the answer, when the therapist was e-mailed, and its follow-up."""
        alert = _alert_for(request, code)
        audit_access(
            request, instance=alert.episode.patient, what="safety alert", extra={"alert": str(alert.code)}
        )
        return Response(s.SafetyAlertOutput(alert).data)


class SafetyFollowUpApi(ApiView):
    @extend_schema(
        operation_id="safety_alerts_follow_up",
        request=s.SafetyFollowUpInput,
        responses={200: s.SafetyAlertOutput, 409: CONFLICT},
        tags=["safety"],
    )
    def post(self, request: Request, code: str) -> Response:
        """Record what was done about an alert (any clinician who may see the patient, as on the
        patient page): ``follow_up`` (contacted, seen, escalated, no_risk) and a short note. The
        alert then leaves the top of the caseload; the change is in the audit trail. 409 if a
        follow-up has been recorded already."""
        alert = _alert_for(request, code)
        require_may_change(user=user_of(request), patient=alert.episode.patient, action="record a follow-up")
        data = valid_input(s.SafetyFollowUpInput, request.data)
        safety_follow_up(alert=alert, user=user_of(request), follow_up=data["follow_up"], note=data["note"])
        return Response(s.SafetyAlertOutput(_alerts(request).get(pk=alert.pk)).data)
