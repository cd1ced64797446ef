"""Who is asking: clinics, staff, memberships, API tokens."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from clinics.models import Membership
from monitoring.api.serializers.fields import StrictCharField, StrictUUIDField


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
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When it stops working; at most API_TOKEN_MAX_DAYS (365) days away. Default (or null): "
        "API_TOKEN_DEFAULT_DAYS (90) days.",
    )


class MeOutput(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    authenticated_by = serializers.ChoiceField(choices=[("session", "session"), ("token", "token")])
    token = TokenOutput(allow_null=True)
    memberships = MembershipOutput(many=True)


# --- Patients, episodes, sessions ----------------------------------------------------------------
