"""Who may reach staff pages. One place, so that hardening (MFA, idle timeout) applies to all."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.account.decorators import reauthentication_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase

from monitoring.security.allauth import reauthentication_needed


def staff_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A signed-in staff member. What they may see is decided by the selectors (404 otherwise)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return view(request, *args, **kwargs)

    return wrapped


def recent_sign_in_required(
    view: Callable[..., HttpResponseBase] | None = None, *, allow_get: bool = True
) -> Any:
    """Exports and staff changes ask for the password (or an authenticator code) again unless the
    user re-authenticated within ACCOUNT_REAUTHENTICATION_TIMEOUT (allauth's flow: the POST is kept
    and carried out after the check). ``allow_get``: showing the page does not ask; acting does.

    Goes inside ``staff_required``, so that a signed-out visitor is sent to sign in first.
    The API applies the same rule to browser sessions (``sign_in_is_recent``, called by
    ``monitoring.api.auth.require_recent_sign_in``), answering JSON instead of redirecting.
    """
    decorator = reauthentication_required(allow_get=allow_get)
    return decorator(view) if view is not None else decorator


def sign_in_is_recent(request: HttpRequest) -> bool:
    """The rule of ``recent_sign_in_required``, as a test: the session's user confirmed their
    password (or a code), or signed in, within ACCOUNT_REAUTHENTICATION_TIMEOUT. The same check
    allauth's decorator makes (``monitoring.security.allauth.reauthentication_needed``)."""
    return not reauthentication_needed(request=request)


class AuthenticatedRequest(HttpRequest):
    """The request type of views behind ``staff_required`` / ``login_required``: the user is a
    real account, never AnonymousUser."""

    user: User  # type: ignore[assignment]
