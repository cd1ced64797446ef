"""Signs staff out after the clinic's idle timeout (Clinic.idle_timeout_minutes).

The last activity is kept in the session, rewritten at most once a minute so that ordinary
browsing does not write the session on every request. With several clinics, the strictest
timeout applies.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db.models import Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from clinics.models import Membership

LAST_SEEN = "bordin_last_seen"
LIMIT = "bordin_idle_limit"
WRITE_EVERY = 60  # seconds


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            limit = request.session.get(LIMIT)
            if limit is None:
                minutes = Membership.objects.filter(user=user, is_active=True).aggregate(
                    m=Min("clinic__idle_timeout_minutes")
                )["m"]
                limit = request.session[LIMIT] = 60 * (minutes or 30)
            last = request.session.get(LAST_SEEN)
            if last is not None and now - last > limit:
                logout(request)
                messages.info(
                    request, "You were signed out after a period of inactivity, to protect patient data."
                )
                return redirect(f"/accounts/login/?next={request.path}")
            if last is None or now - last > WRITE_EVERY:
                request.session[LAST_SEEN] = now
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Adds the Permissions-Policy header (Django has no setting for it): no camera,
    microphone, location, payment or USB for any page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
