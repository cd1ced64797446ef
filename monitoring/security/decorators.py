"""Who may reach staff pages. One place, so that hardening (MFA, idle timeout) applies to all."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.account.decorators import reauthentication_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase


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
    """
    decorator = reauthentication_required(allow_get=allow_get)
    return decorator(view) if view is not None else decorator


class AuthenticatedRequest(HttpRequest):
    """The request type of views behind ``staff_required`` / ``login_required``: the user is a
    real account, never AnonymousUser."""

    user: User  # type: ignore[assignment]
