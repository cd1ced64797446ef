"""Project-level endpoints: the health check and the favicon; Django's error handlers, which
answer in the API's JSON error shape under /api/ and with the usual pages elsewhere."""

from __future__ import annotations

import sys

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views import defaults
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


# --- Error handlers (handler400 ... handler500 in monitoring.urls) ---------------------------------
# Django answers these itself, outside DRF: a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a disallowed
# host, an exception raised by a middleware (the session or user read from a database that is
# down). A client of the API gets JSON for them too, never an HTML page.


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _api_error(request: HttpRequest, exception: BaseException | None, status: int) -> HttpResponse:
    from monitoring.api.auth import django_error_response

    return django_error_response(request, exception, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _api_error(request, exception, 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _api_error(request, exception, 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _api_error(request, exception, 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception, so it is still the current one.
    if _is_api(request):
        return _api_error(request, sys.exc_info()[1], 500)
    return defaults.server_error(request)
