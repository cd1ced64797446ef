"""Who you are, your API tokens, and the staff you can assign patients to."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.models import Membership
from clinics.permissions import clinics_administered
from monitoring.api import serializers as s
from monitoring.api.auth import (
    SessionOnly,
    memberships_for,
    require_recent_sign_in,
    scoped,
    token_of,
    user_of,
)
from monitoring.api.views.base import ApiView, clinic_for, valid_input
from monitoring.models import ApiToken
from monitoring.security.tokens import api_token_create, api_token_revoke


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
        session, with a recent sign-in (401 `reauthentication_required`). It expires after
        `expires_at`, by default API_TOKEN_DEFAULT_DAYS days, at most API_TOKEN_MAX_DAYS days.
        The response is the only time the token is shown."""
        require_recent_sign_in(request)
        data = valid_input(s.TokenInput, request.data)
        clinic = clinic_for(request, data.get("clinic"), admin_for=None)
        token, secret = api_token_create(
            user=user_of(request), clinic=clinic, name=data["name"], expires_at=data["expires_at"]
        )
        return Response({**s.TokenOutput(token).data, "token": secret}, status=status.HTTP_201_CREATED)


class TokenDetailApi(ApiView):
    @extend_schema(operation_id="tokens_revoke", responses={204: None}, tags=["identity"])
    def delete(self, request: Request, code: str) -> Response:
        """Revoke a token (yours, or any of your clinic's if you are its admin). It stops working
        at once; revoking twice is not an error. A browser session needs a recent sign-in."""
        require_recent_sign_in(request)
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
