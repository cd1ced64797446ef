"""The patient's post-session form, reached through a one-time link (no account).

Every response here is ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``: the
token in the URL must not leak to another site or stay in a shared browser's cache.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from clinics.errors import ApplicationError
from monitoring.collection.forms import answers_from_post, questions
from monitoring.collection.invitations import invitation_for_token, invitation_state
from monitoring.collection.responses import submission_create
from monitoring.instruments.scores import response_scores
from monitoring.models import Invitation, Rater, Response

LINK_STATUS = {"unknown": 404, "expired": 410, "revoked": 410, "used": 410}
KIOSK_SESSION_KEY = "bordin_kiosk"


def private(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = never_cache(view)(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapped


def _language(request: HttpRequest, invitation: Invitation | None) -> str:
    available = dict(settings.LANGUAGES)
    asked = request.GET.get("lang") or request.POST.get("lang")
    if asked in available:
        return asked
    preferred = invitation.session.episode.patient.language if invitation else ""
    return preferred if preferred in available else settings.LANGUAGE_CODE


def _link_problem(
    request: HttpRequest, error: ApplicationError, invitation: Invitation | None
) -> HttpResponse:
    context = {
        "reason": error.code,
        "clinic": invitation.session.episode.patient.clinic if invitation else None,
        "kiosk": request.session.get(KIOSK_SESSION_KEY, False),
    }
    return render(request, "collection/form_problem.html", context, status=LINK_STATUS.get(error.code, 400))


# No CSRF cookie check here: the page is sent with Referrer-Policy: no-referrer, so browsers post
# it with "Origin: null", and the unguessable one-time token in the URL already proves the request
# comes from the patient's own link (a forging site would need the token itself).
@login_not_required
@csrf_exempt
@private
@require_http_methods(["GET", "POST"])
def form(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_for_token(token=token)
    except ApplicationError as error:
        return _link_problem(request, error, None)
    language = _language(request, invitation)
    with translation.override(language):
        problem = invitation_state(invitation=invitation)
        if problem and not (problem.code == "used" and request.method == "POST"):
            return _link_problem(request, problem, invitation)
        posted: dict[int, str] = {}
        errors: dict[int, str] = {}
        if request.method == "POST":
            answers, posted, errors = answers_from_post(request.POST, invitation.instrument)
            if not errors:
                try:
                    submission_create(invitation=invitation, answers=answers)
                except ApplicationError as error:
                    if error.code == "used":
                        # A double click, a resubmit after "back", a second tab: the answers
                        # are in once already, which is what the patient wanted.
                        return render(
                            request, "collection/form_done.html", _done_context(request, invitation, None)
                        )
                    return _link_problem(request, error, invitation)
                return redirect(f"{request.path}done/?lang={language}")
        items = questions(invitation.instrument, language, posted, errors)
        context = {
            "invitation": invitation,
            "clinic": invitation.session.episode.patient.clinic,
            "wording": invitation.instrument.translation(language),
            "questions": items,
            "errors": [q for q in items if q["error"]],
            "language": language,
            "languages": settings.LANGUAGES,
            "answered": len(posted),
        }
        return render(request, "collection/form.html", context, status=400 if errors else 200)


def _done_context(request: HttpRequest, invitation: Invitation, response: Response | None) -> dict[str, Any]:
    clinic = invitation.session.episode.patient.clinic
    scores = None
    if response is not None and clinic.patients_see_results:
        scores = response_scores(response=response)
    return {"clinic": clinic, "scores": scores, "kiosk": request.session.get(KIOSK_SESSION_KEY, False)}


@login_not_required
@private
@require_http_methods(["GET"])
def form_done(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_for_token(token=token)
    except ApplicationError as error:
        return _link_problem(request, error, None)
    with translation.override(_language(request, invitation)):
        if invitation.used_at is None:
            return redirect("monitoring:form", token=token)
        response = Response.objects.filter(session=invitation.session, rater=Rater.PATIENT).first()
        return render(request, "collection/form_done.html", _done_context(request, invitation, response))
