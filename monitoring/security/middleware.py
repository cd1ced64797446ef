"""Session and sign-in rules that apply to every staff request.

- IdleTimeoutMiddleware signs staff out after the clinic's idle timeout
  (Clinic.idle_timeout_minutes) and after an absolute lifetime (SESSION_ABSOLUTE_SECONDS) however
  active they were. The last activity is kept in the session, rewritten at most once a minute so
  that ordinary browsing does not write the session on every request. With several clinics, the
  strictest timeout applies.
- MfaRequiredMiddleware sends a signed-in user without an authenticator app (TOTP) to set one up
  before anything else: no patient data is shown on a password alone.
- HtmxRedirectMiddleware turns a redirect answering an htmx request (a page part asking for
  itself, after the session ended) into a reload of the whole page.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRefresh

from clinics.models import Membership

LAST_SEEN = "bordin_last_seen"
LIMIT = "bordin_idle_limit"
SIGNED_IN_AT = "bordin_signed_in_at"  # set at sign-in (monitoring.security.signals)
MFA_DONE = "bordin_mfa"  # this session's user has an authenticator app
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
                minutes = (
                    Membership.objects.active()
                    .filter(user=user)
                    .aggregate(m=Min("clinic__idle_timeout_minutes"))["m"]
                )
                limit = request.session[LIMIT] = 60 * (minutes or 30)
            last = request.session.get(LAST_SEEN)
            signed_in_at = request.session.setdefault(SIGNED_IN_AT, now)
            if last is not None and now - last > limit:
                return self._sign_out(
                    request, "You were signed out after a period of inactivity, to protect patient data."
                )
            if now - signed_in_at > settings.SESSION_ABSOLUTE_SECONDS:
                return self._sign_out(
                    request,
                    f"You were signed out because sessions last at most "
                    f"{settings.SESSION_ABSOLUTE_SECONDS // 3600} hours. Please sign in again.",
                )
            if last is None or now - last > WRITE_EVERY:
                request.session[LAST_SEEN] = now
        return self.get_response(request)

    @staticmethod
    def _sign_out(request: HttpRequest, message: str) -> HttpResponse:
        logout(request)  # flushes the session: it is deleted from the store, not just forgotten
        if request.path.startswith("/api/"):
            return _api_error(401, "session_ended", message)
        messages.info(request, message)
        return redirect(f"{reverse('account_login')}?next={request.path}")


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    """The API's error shape, for refusals made before DRF runs."""
    from monitoring.api.auth import error_body

    return JsonResponse(error_body(code=code, message=message), status=status)


# Reachable by a signed-in user who has not set up an authenticator app yet (besides static files
# and the health check): allauth's account and two-factor pages (set-up, sign-out, password) and
# the pages anyone may open (patient form, staff invitation).
MFA_SETUP_PREFIXES = ("/accounts/", "/f/", "/join/")


class MfaRequiredMiddleware:
    """Staff must set up TOTP (with recovery codes) before they can see any patient data.

    A session counts as two-factor once it passed allauth's code step at sign-in, or set up the
    app (monitoring.security.signals sets MFA_DONE). A session of a user who has an app but skipped the
    step (a sign-in by password alone) is ended. Staff cannot remove their authenticator
    (clinics.adapters.MfaAdapter). API tokens can only be created from a two-factor session.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.session.get(MFA_DONE)
            and not request.path.startswith(("/static/", "/favicon.ico", "/healthz"))
        ):
            from allauth.mfa.models import Authenticator

            if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
                # Has an app but this session never passed the code step (on any page, account
                # pages included): sign in properly.
                return IdleTimeoutMiddleware._sign_out(
                    request, "Please sign in with your password and the code from your authenticator app."
                )
            if request.path.startswith(MFA_SETUP_PREFIXES):
                pass  # setting up the app, or a page open to anyone
            elif request.path.startswith("/api/"):
                return _api_error(
                    403,
                    "mfa_required",
                    "Set up two-factor sign-in (an authenticator app) before using the API.",
                )
            else:
                messages.info(
                    request,
                    "Before you can see patient data, set up two-factor sign-in with an "
                    "authenticator app. It takes a minute.",
                )
                return redirect(f"{reverse('mfa_activate_totp')}?next={request.get_full_path()}")
        return self.get_response(request)


class HtmxRedirectMiddleware:
    """An htmx request (the export page's list asking for itself every 2 seconds) answered with a
    redirect, to sign in again after the idle timeout for instance, reloads the whole page
    instead: the browser would follow the redirect inside the request and htmx would put the
    sign-in page into the list. The reloaded page then redirects as pages do, with its own
    address as ``next``. Sits inside the session and message middleware, which then handle the
    new response (the "you were signed out" message survives)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.headers.get("HX-Request") == "true" and response.status_code in (301, 302, 303, 307, 308):
            refresh = HttpResponseClientRefresh()
            refresh.cookies = response.cookies
            return refresh
        return response


class PermissionsPolicyMiddleware:
    """Adds the Permissions-Policy header (Django has no setting for it): no camera,
    microphone, location, payment or USB for any page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
