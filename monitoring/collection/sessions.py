"""Adding and updating sessions (appointments): the patient page, the API and health-record pushes
all go through here. A session becoming *held* gets its patient's form link."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import User
from django.db import transaction

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Patient, Session
from clinics.validation import check_date
from monitoring.collection.invitations import invitation_revoke, session_mark_held
from monitoring.models import Invitation, Response


def session_add(
    *, patient: Patient, on: date, status: str, user: User
) -> tuple[Session, tuple[Invitation, str] | None]:
    """The next session of the patient's open episode (as the patient page adds one), in the
    given status; a held session comes with its form link. All or nothing: if the link cannot be
    made (no instrument loaded), no session is left behind."""
    episode = patient.episodes.filter(ended_on=None).first()
    if episode is None:
        raise ApplicationError("This patient has no open episode of care; open one first.", code="no_episode")
    with transaction.atomic():
        session = clinic_services.session_create(episode=episode, date=on)
        link = session_update(session=session, user=user, status=status)
    return session, link


def session_update(
    *, session: Session, user: User, on: date | None = None, status: str | None = None
) -> tuple[Invitation, str] | None:
    """Change an appointment's date and/or status, as a health record reports it.

    Becoming *held* goes through ``session_mark_held`` (the page's button), which makes
    the patient's form link; the new invitation and token are returned. A session that is held
    already keeps its link: a health record re-sending the same state must not invalidate the
    link the patient has. Cancelling (or marking a no-show, or back to scheduled) withdraws open
    links, and is refused once answers are in: then the session took place.
    """
    if on is not None:
        check_date(on, what="The session date")
    with transaction.atomic():
        if on is not None and on != session.date:
            session.date = on
            session.save(update_fields=["date"])
        if status is None or status == session.status:
            return None
        if status == Session.Status.HELD:
            return session_mark_held(session=session, user=user)
        if Response.objects.filter(session=session).exists():
            raise ApplicationError(
                "Answers for this session are in, so it took place; it cannot be marked "
                f"'{Session.Status(status).label.lower()}'.",
                code="used",
            )
        session.status = status
        session.save(update_fields=["status"])
        for invitation in session.invitations.open():
            invitation_revoke(invitation=invitation)
    return None
