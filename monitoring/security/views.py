"""The signed-in user's own account pages: API tokens, and how often the e-mail digest comes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from clinics.errors import ApplicationError
from clinics.models import Clinic
from monitoring.care.digest import digest_settings, digest_settings_update
from monitoring.models import ApiToken, DigestSettings
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required
from monitoring.security.tokens import api_token_create, api_token_expiry, api_token_revoke


@login_required
@recent_sign_in_required
@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: AuthenticatedRequest) -> HttpResponse:
    """The user's API tokens: create one (shown once), see when each was last used, revoke."""
    clinics = list(Clinic.objects.worked_in_by(request.user).order_by("name"))
    new_token = ""
    if request.method == "POST" and request.POST.get("action") == "revoke":
        try:
            token = ApiToken.objects.filter(
                user=request.user, code=uuid.UUID(request.POST.get("token", ""))
            ).first()
        except ValueError:  # a tampered form matches nothing
            token = None
        if token is not None:
            api_token_revoke(token=token, by=request.user)
            messages.success(request, f"“{token.name}” is revoked; it no longer opens the API.")
        return redirect("monitoring:api-tokens")
    if request.method == "POST":
        clinic = next((c for c in clinics if str(c.code) == request.POST.get("clinic")), None)
        raw_days = request.POST.get("days", "").strip()
        try:
            if clinic is None:
                raise ApplicationError("Choose one of your clinics.")
            # Empty: the default lifetime; anything but a whole number is out of range (-1).
            # api_token_expiry bounds it before any date arithmetic.
            days = None
            if raw_days:
                days = int(raw_days) if raw_days.isdigit() and len(raw_days) <= 6 else -1
            expires = api_token_expiry(days=days)
            _, new_token = api_token_create(
                user=request.user, clinic=clinic, name=request.POST.get("name", ""), expires_at=expires
            )
        except ApplicationError as error:
            messages.error(request, error.message)
    tokens = ApiToken.objects.filter(user=request.user).select_related("clinic")
    return render(
        request,
        "security/api_tokens.html",
        {
            "tokens": tokens,
            "clinics": clinics,
            "new_token": new_token,
            "now": timezone.now(),
            "default_days": settings.API_TOKEN_DEFAULT_DAYS,
            "max_days": settings.API_TOKEN_MAX_DAYS,
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def notification_settings(request: AuthenticatedRequest) -> HttpResponse:
    """How often the e-mail digest of caseload news comes (monitoring.care.digest)."""
    if request.method == "POST":
        try:
            digest_settings_update(user=request.user, frequency=request.POST.get("frequency", ""))
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Saved.")
            return redirect("monitoring:notification-settings")
    row = digest_settings(user=request.user)
    return render(
        request,
        "security/notification_settings.html",
        {
            "row": row,
            "choices": DigestSettings.Frequency.choices,
            "email": request.user.email,
        },
    )
