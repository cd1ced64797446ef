"""Storing completed questionnaires: the one write path for answers, whatever way they arrive."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Session
from clinics.permissions import may_rate_session
from monitoring.collection.invitations import invitation_state
from monitoring.instruments.selectors import instrument_for_clinic
from monitoring.models import (
    Answer,
    Instrument,
    InstrumentItem,
    Invitation,
    Rater,
    Response,
)


def response_create(
    *,
    session: Session,
    instrument: Instrument,
    answers: Mapping[int, int],
    source: str,
    entered_by: User | None = None,
    submitted_at: datetime | None = None,
) -> Response:
    """Store one completed questionnaire with its answers, in one transaction, or nothing.

    Forms require every item; the database refuses a second response of the same rater for the
    session, which is what makes a double submission end with exactly one stored response.
    """
    items = {i.number: i for i in instrument.items.all()}
    problems = response_problems(instrument=instrument, items=items, answers=answers, require_all=True)
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems)
    try:
        with transaction.atomic():
            response = Response.objects.create(
                session=session,
                instrument=instrument,
                rater=instrument.rater,
                source=source,
                submitted_at=submitted_at or timezone.now(),
                entered_by=entered_by,
            )
            Answer.objects.bulk_create(
                Answer(response=response, item=items[number], value=value)
                for number, value in answers.items()
            )
    except IntegrityError as exc:
        if Response.objects.filter(session=session, rater=instrument.rater).exists():
            raise ApplicationError("A response for this session has already been received.") from exc
        raise
    return response


def response_problems(
    *,
    instrument: Instrument,
    items: Mapping[int, InstrumentItem],
    answers: Mapping[int, int],
    require_all: bool,
) -> list[str]:
    problems = []
    for number, value in sorted(answers.items()):
        if number not in items:
            problems.append(f"Item {number} is not part of {instrument}.")
        elif isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"Item {number}: the answer must be a whole number.")
        elif not instrument.scale_min <= value <= instrument.scale_max:
            problems.append(
                f"Item {number}: {value} is outside the scale ({instrument.scale_min} to {instrument.scale_max})."
            )
    if require_all:
        missing = sorted(set(items) - set(answers))
        if missing:
            problems.append("No answer for item " + ", ".join(map(str, missing)) + ".")
    return problems


def submission_create(*, invitation: Invitation, answers: Mapping[int, int]) -> Response:
    """Store the patient's answers through their link: exactly once, all or nothing.

    The link is claimed with a conditional UPDATE inside the same transaction as the response:
    of two concurrent submissions one claims it and the other finds it used, and if storing the
    answers fails the claim is rolled back with them, so the patient can try again.
    """
    problem = invitation_state(invitation=invitation)
    if problem:
        raise problem
    instrument = invitation.instrument
    items = {i.number: i for i in instrument.items.all()}
    problems = response_problems(instrument=instrument, items=items, answers=answers, require_all=True)
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems, code="invalid")
    now = timezone.now()
    with transaction.atomic():
        claimed = Invitation.objects.usable(now).filter(pk=invitation.pk).update(used_at=now)
        if not claimed:
            invitation.refresh_from_db()
            raise invitation_state(invitation=invitation, now=now) or ApplicationError(
                "This link cannot be used.", code="unknown"
            )
        response = response_create(
            session=invitation.session,
            instrument=instrument,
            answers=answers,
            source=Response.Source.TABLET
            if invitation.channel == Invitation.Channel.TABLET
            else Response.Source.LINK,
            submitted_at=now,
        )
    return response


def response_enter(*, session: Session, rater: str, answers: Mapping[int, int], user: User) -> Response:
    """Staff entry of a completed form on the patient's behalf (source "staff"), or the
    therapist's own rating; the page (``views.response_enter``) and the API both call it.

    A filled-in form means the session took place, so it is marked held; open form links are
    withdrawn (the answers are in); the episode is analysed once the transaction commits. A
    second response of the same rater is refused with code ``used``.
    """
    clinic = session.episode.patient.clinic
    if rater == Rater.THERAPIST and not may_rate_session(user=user, session=session):
        raise PermissionDenied(
            "Only the patient's therapist can rate this session, when the clinic has it turned on."
        )
    instrument = instrument_for_clinic(clinic=clinic, rater=rater)
    try:
        with transaction.atomic():
            if session.status != Session.Status.HELD:
                session.status = Session.Status.HELD
                session.save(update_fields=["status"])
            response = response_create(
                session=session,
                instrument=instrument,
                answers=answers,
                source=Response.Source.STAFF,
                entered_by=user,
            )
    except ApplicationError as error:
        if not error.problems and Response.objects.filter(session=session, rater=rater).exists():
            raise ApplicationError(error.message, code="used") from error
        raise
    if rater == Rater.PATIENT:
        Invitation.objects.open().filter(session=session).update(revoked_at=timezone.now())
        from monitoring import tasks  # tasks import this module

        episode_id = session.episode_id
        transaction.on_commit(lambda: tasks.episode_analyse.enqueue(episode_id))
    return response
