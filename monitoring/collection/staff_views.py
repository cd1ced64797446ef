"""Answers collected in the clinic: the tablet hand-over (the patient fills in the form on the
clinic's tablet) and staff entry of a paper form, or the therapist's own rating."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from clinics.errors import ApplicationError
from clinics.models import Session
from clinics.permissions import may_rate_session, require_may_change
from clinics.selectors import session_get_for_user
from monitoring.collection import responses as collection_responses
from monitoring.collection.forms import answers_from_post, questions
from monitoring.collection.invitations import (
    invitation_create,
    session_mark_held,
)
from monitoring.collection.selectors import sessions_for_kiosk
from monitoring.collection.views import KIOSK_SESSION_KEY
from monitoring.instruments.measures import outcome_instruments
from monitoring.instruments.selectors import instrument_for_clinic
from monitoring.models import Invitation, Rater
from monitoring.security.audit import access_log_list
from monitoring.security.decorators import AuthenticatedRequest


@login_required
@require_http_methods(["GET", "POST"])
def response_enter(request: AuthenticatedRequest, code: str, rater: str) -> HttpResponse:
    """Staff entry of a paper form on the patient's behalf, or the therapist's own rating."""
    session = session_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=session.episode.patient, action="enter answers")
    if rater == Rater.THERAPIST and not may_rate_session(user=request.user, session=session):
        messages.error(
            request, "Only the patient's therapist can rate this session, when the clinic has it turned on."
        )
        return redirect("monitoring:session", code=session.code)
    clinic = session.episode.patient.clinic
    measure = request.GET.get("measure", "alliance")
    try:
        if measure == "alliance":
            instrument = instrument_for_clinic(clinic=clinic, rater=rater)
        elif rater == Rater.PATIENT and measure in clinic.outcome_measures:
            instrument = outcome_instruments([measure])[measure]
        else:
            raise ApplicationError("This clinic does not ask that measure.")
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("monitoring:session", code=session.code)
    posted: dict[int, str] = {}
    errors: dict[int, str] = {}
    if request.method == "POST":
        answers, posted, errors = answers_from_post(request.POST, instrument)
        if not errors:
            try:
                collection_responses.response_enter(
                    session=session, rater=rater, answers=answers, user=request.user, measure=measure
                )
            except (ApplicationError, PermissionDenied) as error:
                messages.error(request, getattr(error, "message", str(error)))
                return redirect("monitoring:session", code=session.code)
            messages.success(request, "The answers have been saved.")
            return redirect("monitoring:session", code=session.code)
    items = questions(instrument, "en", posted, errors)
    return render(
        request,
        "collection/response_enter.html",
        {
            "session": session,
            "patient": session.episode.patient,
            "rater": rater,
            "questions": items,
            "errors": [q for q in items if q["error"]],
            "wording": instrument.translation("en"),
            "measure": measure,
        },
        status=400 if errors else 200,
    )


@login_required
def kiosk(request: AuthenticatedRequest) -> HttpResponse:
    today = timezone.localdate()
    sessions = list(sessions_for_kiosk(user=request.user, since=today - timedelta(days=7), today=today))
    access_log_list(
        actor=request.user,
        what="tablet picker",
        patients=[s.episode.patient for s in sessions],
        path=request.path,
    )
    return render(request, "collection/kiosk.html", {"sessions": sessions, "today": today})


@login_required
@require_POST
def kiosk_start(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """Hand the tablet to the patient: create a tablet link, then sign the staff member out so
    that nothing but the form is reachable until staff sign in again."""
    session = session_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=session.episode.patient, action="hand the tablet over")
    part = Invitation.Part.BEFORE if request.POST.get("part") == "before" else Invitation.Part.AFTER
    try:
        if part == Invitation.Part.AFTER and session.status != Session.Status.HELD:
            session_mark_held(session=session, user=request.user)
        _, token = invitation_create(
            session=session, created_by=request.user, channel=Invitation.Channel.TABLET, part=part
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("monitoring:kiosk")
    logout(request)
    request.session[KIOSK_SESSION_KEY] = True
    return redirect("monitoring:form", token=token)
