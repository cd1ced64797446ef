"""Who may reach staff pages. One place, so that hardening (MFA, idle timeout) applies to all."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

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


class AuthenticatedRequest(HttpRequest):
    """The request type of views behind ``staff_required`` / ``login_required``: the user is a
    real account, never AnonymousUser."""

    user: User  # type: ignore[assignment]
