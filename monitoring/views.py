"""Project-level endpoints: the health check and the favicon."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import never_cache


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request, not at import: with hashed static files the name is only known once
    # collectstatic has run, and importing the URLconf (e.g. `check --deploy`) must not need it.
    return redirect(static("favicon.svg"), permanent=True)


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness and database reachability, for load balancers and monitoring. No data."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})
