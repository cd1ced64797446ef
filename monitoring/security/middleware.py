"""Session and sign-in rules that apply to every staff request.

- ClinicSignOutMiddleware keeps a session out of the clinics whose admin signed the person out
  of them after the session signed in (per-membership "Sign out everywhere").
- IdleTimeoutMiddleware signs staff out after the clinic's idle timeout
  (Clinic.idle_timeout_minutes) and after an absolute lifetime (SESSION_ABSOLUTE_SECONDS) however
  active they were. The last activity is kept in the session, rewritten at most once a minute so
  that ordinary browsing does not write the session on every request. With several clinics, the
  strictest timeout applies.
- MfaRequiredMiddleware sends a signed-in user without an authenticator app (TOTP) to set one up
  before anything else: no patient data is shown on a password alone.
- HtmxRedirectMiddleware turns a redirect answering an htmx request (a page part asking for
  itself, after the session ended) into a reload of the whole page.
- ClientAddressMiddleware sets ``REMOTE_ADDR`` to the client's address behind the trusted
  reverse proxies (``TRUSTED_PROXIES``), before anything reads it.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRefresh

from clinics.models import SIGNED_OUT_OF, Membership

LAST_SEEN = "bordin_last_seen"
LIMIT = "bordin_idle_limit"
SIGNED_IN_AT = "bordin_signed_in_at"  # set at sign-in (monitoring.security.signals)
MFA_DONE = "bordin_mfa"  # this session's user has an authenticator app
SIGNED_OUT_TOLD = "bordin_signed_out_told"  # clinics whose sign-out this session was told of
WRITE_EVERY = 60  # seconds


class ClinicSignOutMiddleware:
    """A clinic's admin can sign a colleague out of that clinic ("Sign out everywhere" on the
    membership, ``clinics.services.user_sessions_end_by_admin``), which stamps
    ``Membership.signed_out_at``. A session signed in before the stamp no longer reaches that
    clinic: its id goes into the user's ``SIGNED_OUT_OF``, which every access rule reads
    (``Membership.objects.reaching``), and the person is told once. The person's other clinics are
    not that admin's to end: the session goes on for them. A session that reaches no clinic any
    more is ended. A new sign-in (password and code) reaches the clinic again. API tokens are
    their own credential and are revoked separately."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # A session without a sign-in time is as old as can be.
            signed_in = datetime.fromtimestamp(request.session.get(SIGNED_IN_AT, 0), UTC)
            closed = dict(
                Membership.objects.active()
                .filter(user_id=user.pk, signed_out_at__gt=signed_in)
                .values_list("clinic_id", "clinic__name")
            )
            if closed:
                setattr(user, SIGNED_OUT_OF, frozenset(closed))
                if not Membership.objects.reaching(user).exists():
                    return IdleTimeoutMiddleware._sign_out(
                        request, "You were signed out by your clinic's admin. Please sign in again."
                    )
                told = request.session.get(SIGNED_OUT_TOLD, [])
                untold = {c: name for c, name in closed.items() if c not in told}
                if untold and not request.path.startswith("/api/"):
                    for name in untold.values():
                        messages.info(
                            request,
                            f"An admin of {name} signed you out of {name} on every device. "
                            f"Sign out and in again to work in {name}.",
                        )
                    request.session[SIGNED_OUT_TOLD] = sorted([*told, *untold])
        return self.get_response(request)


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


# --- The client's address ----------------------------------------------------------------------

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def _networks(trusted: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(net, strict=False) for net in trusted)


def _address(text: str) -> IpAddress | None:
    """An address as a proxy writes it (``203.0.113.7``, ``2001:db8::1``, ``[2001:db8::1]``), or
    None for anything else (a port, a name, garbage)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(*, peer: str, forwarded_for: str | None, trusted: int | Sequence[str]) -> str:
    """The client's address, from the connection's address (``peer``) and ``X-Forwarded-For``.

    ``trusted`` is ``TRUSTED_PROXIES``: 0 believes no header (the peer is the client); a count
    N says that N proxies of ours stand in front and each appends the address it saw, so the
    client is the N-th entry from the right (the left ones were written by the client itself
    and are ignored); a list of networks believes the header only when the peer is in one of
    them, and the client is then the first address from the right outside them. An entry that
    is not an address ends the trust: the last address of ours before it is the client.
    """
    if not forwarded_for or not trusted:
        return peer
    hops = [_address(part) for part in forwarded_for.split(",")]
    if isinstance(trusted, int):
        chosen = hops[-min(trusted, len(hops))]
        return str(chosen) if chosen is not None else peer
    networks = _networks(tuple(trusted))

    def ours(address: IpAddress | None) -> bool:
        return address is not None and any(address in net for net in networks)

    current = _address(peer)
    if not ours(current):
        return peer
    for hop in reversed(hops):
        if hop is None:
            break  # garbage: whoever wrote it is the client as far as we can tell
        current = hop
        if not ours(hop):
            break
    return str(current)


class ClientAddressMiddleware:
    """Behind a reverse proxy, ``REMOTE_ADDR`` is the proxy. This sets it to the client's address
    (``client_address``, per ``TRUSTED_PROXIES``) and removes ``X-Forwarded-For``, first in the
    chain, so that django-axes, allauth's rate limits, the audit trail (our entries and
    django-auditlog's, which would otherwise believe the header as it came), DRF's throttle and
    the logs (gunicorn's access line reads the same WSGI environ) all see one address, and none
    can read an address a client wrote itself. The connection's address is kept as
    ``BORDIN_PEER_ADDR``. ``BEHIND_PROXY`` (``X-Forwarded-Proto``, the scheme) is separate."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = meta.get("REMOTE_ADDR") or ""
        forwarded_for = meta.pop("HTTP_X_FORWARDED_FOR", None)
        request.__dict__.pop("headers", None)  # a cached view of META would still have the header
        meta["BORDIN_PEER_ADDR"] = peer
        meta["REMOTE_ADDR"] = client_address(
            peer=peer, forwarded_for=forwarded_for, trusted=settings.TRUSTED_PROXIES
        )
        return self.get_response(request)
