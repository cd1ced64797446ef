"""The patient's post-session form, reached through a one-time link (no account).

Every response here is ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``: the
token in the URL must not leak to another site or stay in a shared browser's cache.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from clinics.errors import ApplicationError
from clinics.models import Clinic
from clinics.tokens import token_hash
from monitoring.collection.forms import MESSAGE_FIELD, answers_from_post, message_from_post, questions
from monitoring.collection.invitations import invitation_for_token, invitation_instruments, invitation_state
from monitoring.collection.responses import submission_create
from monitoring.instruments.measures import risk_answers
from monitoring.instruments.scores import response_scores
from monitoring.models import Answer, Invitation, PatientMessage, Rater, Response, SafetyAlert

LINK_STATUS = {"unknown": 404, "expired": 410, "revoked": 410, "used": 410}
KIOSK_SESSION_KEY = "bordin_kiosk"
#: An answer's field name: ``item_<n>`` (the alliance) or ``<measure code>_<n>`` (``phq9_9``).
ANSWER_FIELD = re.compile(r"[a-z][a-z0-9-]{0,49}_\d{1,3}")
#: The database cannot be reached (down, restarting, connection lost): nothing was stored.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
#: Seconds a patient is asked to wait before sending again (the Retry-After of the 503).
RETRY_AFTER = 30
#: The thank-you address carries a signed mark that the answers were stored, so that the page can
#: still thank the patient if the database fails between storing and showing it.
STORED_SALT = "bordin.collection.stored"
STORED_MARK_SECONDS = 3600

logger = logging.getLogger(__name__)


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
    used = error.code == "used" and invitation is not None
    context = {
        "reason": error.code,
        "clinic": invitation.session.episode.patient.clinic if invitation else None,
        "kiosk": request.session.get(KIOSK_SESSION_KEY, False),
        # Other answers sent on a link already used (a second tab): not stored, and said so.
        "not_stored": used and request.method == "POST",
        "crisis": (
            invitation.session.episode.patient.clinic.crisis_message
            if used
            and invitation is not None
            and SafetyAlert.objects.filter(session=invitation.session, followed_up_at=None).exists()
            else ""
        ),
    }
    return render(request, "collection/form_problem.html", context, status=LINK_STATUS.get(error.code, 400))


def _unavailable(request: HttpRequest) -> HttpResponse:
    """The database could not even find the link: a calm 503 that keeps whatever was posted as
    hidden fields, so that "Send again" posts the same answers once the database is back."""
    kept = [
        (name, value)
        for name in list(request.POST)[:100]
        if ANSWER_FIELD.fullmatch(name)
        and (value := request.POST.get(name, "")).isdigit()
        and len(value) <= 3
    ]
    message = request.POST.get(MESSAGE_FIELD, "")
    if kept and message.strip() and len(message) <= PatientMessage.MAX_LENGTH:
        kept.append((MESSAGE_FIELD, message))
    with translation.override(_language(request, None)):
        response = render(
            request,
            "collection/form_unavailable.html",
            {"kept": kept, "language": translation.get_language()},
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER)
    return response


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
    except DATABASE_UNAVAILABLE as exc:
        logger.warning("patient form: the database is not available to look up the link (%s)", exc)
        return _unavailable(request)
    language = _language(request, invitation)
    with translation.override(language):
        problem = invitation_state(invitation=invitation)
        if problem and not (problem.code == "used" and request.method == "POST"):
            return _link_problem(request, problem, invitation)
        forms = invitation_instruments(invitation)
        read = (
            {i.measure: answers_from_post(request.POST, i) for i in forms} if request.method == "POST" else {}
        )
        posted = {measure: r[1] for measure, r in read.items()}
        errors = {measure: r[2] for measure, r in read.items() if r[2]}
        message, message_error = message_from_post(request.POST) if request.method == "POST" else ("", "")
        unavailable = False
        risk = False
        if request.method == "POST" and not errors and not message_error:
            answers = {measure: r[0] for measure, r in read.items()}
            risk = any(risk_answers(i, answers[i.measure]) for i in forms)
            given = dict(answers)
            try:
                submission_create(
                    invitation=invitation,
                    answers=answers.pop("alliance", None),
                    measures=answers,
                    message=message,
                )
            except ApplicationError as error:
                if error.code == "used" and _same_as_stored(invitation, given, message):
                    # A double click, or a resubmit after "back": the same answers are in
                    # once already, which is what the patient wanted.
                    return render(
                        request, "collection/form_done.html", _done_context(request, invitation, None)
                    )
                # A second tab or phone with other answers: say plainly that the first ones
                # count and these were not stored, rather than thank for them.
                return _link_problem(request, error, invitation)
            except DATABASE_UNAVAILABLE:
                # The link's claim and the answers are one transaction, so nothing is stored
                # (or, if the commit went through and only its answer was lost, the resend
                # finds the link used and shows the thank-you page): keep the patient's
                # choices on the page and let them send again.
                logger.warning("patient form: the database is not available to store the answers")
                unavailable = True
            else:
                # The mark says the answers are in, and whether they need the crisis text,
                # so the thank-you page can say both even if the database fails after this.
                mark = signing.dumps(
                    "stored-risk" if risk else "stored", salt=f"{STORED_SALT}:{token_hash(token)}"
                )
                return redirect(f"{request.path}done/?lang={language}&stored={mark}")
        sections: list[dict[str, Any]] = [
            {
                "wording": instrument.translation(language),
                "measure": instrument.measure,
                "risk": bool(instrument.scoring.get("risk_items")),
                "questions": questions(
                    instrument,
                    language,
                    posted.get(instrument.measure),
                    errors.get(instrument.measure),
                ),
            }
            for instrument in forms
        ]
        items = [q for section in sections for q in section["questions"]]
        clinic = invitation.session.episode.patient.clinic
        context = {
            "invitation": invitation,
            "clinic": clinic,
            "wording": sections[0]["wording"],
            "sections": sections,
            "questions": items,
            "errors": [q for q in items if q["error"]],
            "message": message,
            "message_error": message_error,
            "message_max": PatientMessage.MAX_LENGTH,
            "language": language,
            "languages": settings.LANGUAGES,
            "answered": sum(len(p) for p in posted.values()),
            "unavailable": unavailable,
            "crisis": clinic.crisis_message,
            "before": invitation.part == Invitation.Part.BEFORE,
            "late": _late(invitation),
            "session_date": invitation.session.date,
        }
        status = 503 if unavailable else 400 if errors or message_error else 200
        response = render(request, "collection/form.html", context, status=status)
        if unavailable:
            response["Retry-After"] = str(RETRY_AFTER)
        return response


def _same_as_stored(invitation: Invitation, answers: dict[str, dict[int, int]], message: str) -> bool:
    """Whether the posted answers (measure code to item number to value) and message are exactly
    the patient's stored ones for this session (a message differing only in surrounding blanks
    is the same)."""
    stored_message = (
        PatientMessage.objects.filter(invitation=invitation).values_list("text", flat=True).first()
    )
    if message.strip() != (stored_message or ""):
        return False
    posted = {measure: dict(given) for measure, given in answers.items() if given}
    stored: dict[str, dict[int, int]] = {}
    for measure, number, value in Answer.objects.filter(
        response__session=invitation.session, response__rater=Rater.PATIENT
    ).values_list("response__measure", "item__number", "value"):
        stored.setdefault(measure, {})[number] = value
    return all(stored.get(measure) == given for measure, given in posted.items())


def _late(invitation: Invitation) -> bool:
    """The form after a session answered on a later day: it then speaks of the patient's most
    recent session, not of "today's"."""
    return invitation.part == Invitation.Part.AFTER and invitation.session.date < timezone.localdate()


def _done_context(request: HttpRequest, invitation: Invitation, response: Response | None) -> dict[str, Any]:
    clinic = invitation.session.episode.patient.clinic
    scores = None
    if response is not None and clinic.patients_see_results:
        scores = response_scores(response=response)
    # A risk answer on this session's symptom questions: the clinic's crisis text comes first.
    risk = SafetyAlert.objects.filter(session=invitation.session, followed_up_at=None).exists()
    return {
        "clinic": clinic,
        "scores": scores,
        "kiosk": request.session.get(KIOSK_SESSION_KEY, False),
        "crisis": clinic.crisis_message if risk else "",
        "late": _late(invitation),
    }


@login_not_required
@private
@require_http_methods(["GET"])
def form_done(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_for_token(token=token)
    except ApplicationError as error:
        return _link_problem(request, error, None)
    except DATABASE_UNAVAILABLE as exc:
        logger.warning("thank-you page: the database is not available (%s)", exc)
        return _done_without_database(request, token)
    with translation.override(_language(request, invitation)):
        if invitation.used_at is None:
            return redirect("monitoring:form", token=token)
        try:
            response = Response.objects.filter(
                session=invitation.session, rater=Rater.PATIENT, measure="alliance"
            ).first()
            return render(request, "collection/form_done.html", _done_context(request, invitation, response))
        except DATABASE_UNAVAILABLE as exc:
            logger.warning("thank-you page: the database is not available (%s)", exc)
            return _done_without_database(request, token)


def _done_without_database(request: HttpRequest, token: str) -> HttpResponse:
    """The database failed after the answers were stored (the address carries the signed mark
    the form gave it): thank the patient all the same, without their scores. Without the mark,
    nothing says the answers are in: the calm 503."""
    try:
        mark = signing.loads(
            request.GET.get("stored", ""),
            salt=f"{STORED_SALT}:{token_hash(token)}",
            max_age=STORED_MARK_SECONDS,
        )
    except signing.BadSignature:
        mark = None
    if mark not in ("stored", "stored-risk"):
        return _unavailable(request)
    with translation.override(_language(request, None)):
        context = {
            "clinic": None,
            "scores": None,
            "kiosk": False,
            "language": translation.get_language(),
            # Without the database the clinic's own text cannot be read: the default one.
            "crisis": str(Clinic.DEFAULT_CRISIS_TEXT) if mark == "stored-risk" else "",
        }
        return render(request, "collection/form_done.html", context)
