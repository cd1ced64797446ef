"""Adding and updating sessions (appointments): the patient page, the API and health-record pushes
all go through here. A session becoming *held* gets its patient's form link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import FormChannel, Patient, Session
from clinics.validation import check_date
from monitoring.collection import links
from monitoring.collection.invitations import (
    invitation_create,
    invitation_revoke,
    invitation_send,
    session_mark_held,
)
from monitoring.models import Invitation, Rater, Response


def session_add(
    *, patient: Patient, on: date, status: str, user: User | None
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


def session_push(
    *, patient: Patient, on: date, status: str, user: User, external_id: str
) -> tuple[Session, tuple[Invitation, str] | None, bool]:
    """An appointment pushed by a health record under its own id: the session made the first
    time, or the one made before for the same ``external_id`` (then ``False``, unchanged: a
    retried push must not add a second session; changes go through ``session_update``). The id
    is unique in the clinic, so the same id for another patient is refused (``external_id_taken``).
    """
    known = _pushed(patient=patient, external_id=external_id)
    if known is not None:
        return known, None, False
    try:
        with transaction.atomic():
            session, link = session_add(patient=patient, on=on, status=status, user=user)
            session.external_id = external_id
            session.external_clinic_id = patient.clinic_id
            session.save(update_fields=["external_id", "external_clinic"])
    except IntegrityError:  # the same push, at the same moment, made it first
        known = _pushed(patient=patient, external_id=external_id)
        if known is None:
            raise
        return known, None, False
    return session, link, True


def _pushed(*, patient: Patient, external_id: str) -> Session | None:
    session = (
        Session.objects.filter(external_clinic_id=patient.clinic_id, external_id=external_id)
        .select_related("episode")
        .first()
    )
    if session is not None and session.episode.patient_id != patient.pk:
        raise ApplicationError(
            f"The appointment id '{external_id}' is already used for a session of another patient "
            "in this clinic.",
            code="external_id_taken",
        )
    return session


def session_update(
    *, session: Session, user: User | None, on: date | None = None, status: str | None = None
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


@dataclass(frozen=True)
class FormSent:
    """What "Send form" did: the session (``added`` if it was created for it), its usable link
    and token, and the channel it went by ("" when there is no contact: show or copy the link)."""

    session: Session
    invitation: Invitation
    token: str
    channel: str
    added: bool
    moved_from: date | None = None  # the booked date of the next appointment, moved to today
    #: The contact the patient's chosen channel needs and the record lacks ("email address",
    #: "mobile number"): nothing was sent.
    missing: str = ""

    @property
    def url(self) -> str:
        return links.form_url(self.token)


def patient_channel(patient: Patient) -> str:
    """How the patient gets form links: the channel chosen for them (``Patient.form_channel``:
    email, text message, or "" for none, the link handed over in the clinic); when none was
    chosen, email if there is an address on file, else a text message if there is a mobile
    number, else "". A chosen channel is returned even without its contact on file
    (:func:`channel_missing` says what is missing)."""
    if patient.form_channel == FormChannel.NONE:
        return ""
    if patient.form_channel in (FormChannel.EMAIL, FormChannel.SMS):
        return patient.form_channel
    if patient.contact_email:
        return "email"
    return "sms" if patient.contact_phone else ""


def channel_missing(patient: Patient, channel: str) -> str:
    """The contact ``channel`` needs that the patient's record lacks, in words; "" if none."""
    if channel == "email" and not patient.contact_email:
        return "email address"
    if channel == "sms" and not patient.contact_phone:
        return "mobile number"
    return ""


def _answered(session: Session) -> bool:
    return Response.objects.filter(session=session, rater=Rater.PATIENT, measure="alliance").exists()


def form_send(*, patient: Patient, user: User | None, session: Session | None = None) -> FormSent:
    """The patient page's "Send form": one step from appointment to a link in the patient's hands.

    Without ``session``: today's session of the open episode that lacks the patient's answers;
    else the next booked appointment (the first scheduled one after today), moved to today; else
    a new session dated today. With ``session`` (a "Form not in" link): that session, if it is not in
    the future. The session is marked held; its open link is reused (a link the patient already
    has keeps working) or a new one is made; then it is sent by :func:`patient_channel`. All or
    nothing: if sending fails, no session, status or link is left behind. ``user`` is None for
    the scheduler (``monitoring.collection.schedules``).
    """
    today = timezone.localdate()
    added = False
    moved_from: date | None = None
    with transaction.atomic():
        if session is None:
            episode = patient.episodes.filter(ended_on=None).first()
            if episode is None:
                raise ApplicationError(
                    "This patient has no open episode of care; open one first.", code="no_episode"
                )
            todays = list(
                episode.sessions.filter(date=today)
                .exclude(status__in=[Session.Status.CANCELLED, Session.Status.NO_SHOW])
                .order_by("-number")
            )
            session = next((s for s in todays if not _answered(s)), None)
            if session is None and todays:
                raise ApplicationError(
                    f"The patient's answers for today's session ({todays[0].number}) are already in.",
                    code="used",
                )
            if session is None:
                # The next booked appointment took place today: it keeps its number and moves
                # to today, so numbers still follow dates.
                session = (
                    episode.sessions.filter(date__gt=today, status=Session.Status.SCHEDULED)
                    .order_by("number")
                    .first()
                )
                if session is not None:
                    moved_from = session.date
                    session.date = today
                    session.save(update_fields=["date"])
            if session is None:
                session = clinic_services.session_create(episode=episode, date=today)
                added = True
        elif session.status in (Session.Status.CANCELLED, Session.Status.NO_SHOW):
            raise ApplicationError(
                f"Session {session.number} is marked '{session.get_status_display().lower()}'; "
                "change that on its page first if it took place.",
                code="not_ready",
            )
        elif session.date > today:
            raise ApplicationError(
                f"Session {session.number} is on {session.date:%-d %b %Y}: send its form once it "
                "has taken place.",
                code="not_ready",
            )
        elif _answered(session):
            raise ApplicationError(
                f"The patient's answers for session {session.number} are already in.", code="used"
            )
        if session.status != Session.Status.HELD:
            session_mark_held(session=session, user=user)
        invitation = (
            session.invitations.usable().filter(part=Invitation.Part.AFTER).order_by("-created_at").first()
        )
        if invitation is None:
            invitation, token = invitation_create(session=session, created_by=user)
        else:
            token = links.token_for_salt(invitation.salt)
        channel = patient_channel(patient)
        missing = channel_missing(patient, channel)
        if missing:
            channel = ""
        elif channel:
            invitation_send(invitation=invitation, channel=channel)
    return FormSent(
        session=session,
        invitation=invitation,
        token=token,
        channel=channel,
        added=added,
        moved_from=moved_from,
        missing=missing,
    )
