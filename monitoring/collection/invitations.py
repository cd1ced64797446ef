"""Patient form links: create, withdraw, send, check and look up; the one reminder per link."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Session
from clinics.tokens import token_hash
from monitoring.collection import links, messaging
from monitoring.instruments.measures import outcome_instruments
from monitoring.instruments.selectors import instrument_for_clinic
from monitoring.models import (
    Instrument,
    Invitation,
    Rater,
    Response,
)


def invitation_create(
    *,
    session: Session,
    created_by: User | None,
    channel: str = Invitation.Channel.LINK,
    part: str = Invitation.Part.AFTER,
) -> tuple[Invitation, str]:
    """A fresh one-time link for the session; older open links of the same part stop working.

    ``part`` "after" (the default) asks the alliance, plus the clinic's symptom measures when
    they go with it; it needs the session marked held. "before" asks the symptom measures only,
    for a clinic that has patients answer them before the session. Returns the invitation and its
    token (to show or send now; it can be derived again later).
    """
    clinic = session.episode.patient.clinic
    measures = list(clinic.outcome_measures)
    if part == Invitation.Part.BEFORE:
        if not measures:
            raise ApplicationError(
                "This clinic asks no symptom measures; choose them in the clinic settings."
            )
        answered = set(
            Response.objects.filter(session=session, rater=Rater.PATIENT).values_list("measure", flat=True)
        )
        if set(measures) <= answered:
            raise ApplicationError(
                "The patient's symptom answers for this session are already in.", code="used"
            )
    elif part == Invitation.Part.AFTER:
        if session.status != Session.Status.HELD:
            raise ApplicationError("Mark the session as held before creating a form link.")
        if Response.objects.filter(session=session, rater=Rater.PATIENT, measure="alliance").exists():
            raise ApplicationError("The patient's answers for this session are already in.", code="used")
        if clinic.outcome_timing != clinic.OutcomeTiming.WITH_ALLIANCE:
            measures = []
    else:
        raise ApplicationError("A form link is for before or after the session.")
    now = timezone.now()
    salt = links.new_salt()
    token = links.token_for_salt(salt)
    expires = now + timedelta(hours=clinic.link_expiry_hours)
    reminder = now + timedelta(hours=clinic.reminder_delay_hours) if clinic.reminder_delay_hours else None
    with transaction.atomic():
        session.invitations.open().filter(part=part).update(revoked_at=now)
        invitation = Invitation.objects.create(
            session=session,
            instrument=instrument_for_clinic(clinic=clinic),
            part=part,
            measures=measures,
            channel=channel,
            salt=salt,
            token_hash=token_hash(token),
            created_by=created_by,
            expires_at=expires,
            reminder_due_at=reminder if reminder and reminder < expires else None,
        )
    return invitation, token


def invitation_instruments(invitation: Invitation) -> list[Instrument]:
    """The questionnaires on this link, in the order the patient meets them: the alliance
    (after the session), then the symptom measures it carries."""
    forms = [invitation.instrument] if invitation.part == Invitation.Part.AFTER else []
    return forms + list(outcome_instruments(invitation.measures).values())


def session_mark_held(*, session: Session, user: User | None) -> tuple[Invitation, str] | None:
    """Mark a session held; create its form link unless the answers are already in."""
    if session.status != Session.Status.HELD:
        session.status = Session.Status.HELD
        session.save(update_fields=["status"])
    if Response.objects.filter(session=session, rater=Rater.PATIENT, measure="alliance").exists():
        return None
    return invitation_create(session=session, created_by=user)


def invitation_revoke(*, invitation: Invitation) -> None:
    Invitation.objects.open().filter(pk=invitation.pk).update(revoked_at=timezone.now())


def invitation_send(*, invitation: Invitation, channel: str) -> None:
    """Send the link by email or text message to the patient's contact on file."""
    patient = invitation.session.episode.patient
    to = patient.contact_email if channel == "email" else patient.contact_phone
    if channel not in ("email", "sms"):
        raise ApplicationError("Choose email or text message.")
    if not to:
        what = "email address" if channel == "email" else "mobile number"
        raise ApplicationError(
            f"There is no {what} on file for {patient.label}. Add one on the patient's page."
        )
    invitation_problem = invitation_state(invitation=invitation)
    if invitation_problem:
        raise ApplicationError(invitation_problem.message, code=invitation_problem.code)
    messaging.form_link_send(
        channel=channel,
        to=to,
        clinic_name=patient.clinic.name,
        url=links.form_url(links.token_for_salt(invitation.salt)),
        language=patient.language,
        reminder=False,
    )
    Invitation.objects.filter(pk=invitation.pk).update(sent_to=channel)


def invitation_state(*, invitation: Invitation, now: datetime | None = None) -> ApplicationError | None:
    """Why the link cannot be used now, or None if it can. Messages are for the patient."""
    now = now or timezone.now()
    if invitation.used_at is not None:
        return ApplicationError("Your answers for this session have already been received.", code="used")
    if invitation.revoked_at is not None:
        return ApplicationError("This link has been replaced or withdrawn by the clinic.", code="revoked")
    if invitation.expires_at <= now:
        return ApplicationError("This link has expired.", code="expired")
    return None


def invitation_for_token(*, token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_related("session__episode__patient__clinic", "instrument")
        # With its items and wording loaded, the form can be drawn again with the patient's
        # answers even when the database fails while storing them.
        .prefetch_related("instrument__items", "instrument__translations")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if invitation is None:
        raise ApplicationError("This link is not known.", code="unknown")
    return invitation


def reminders_due(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        Invitation.objects.usable(now)
        .filter(reminder_due_at__lte=now, reminder_sent_at=None)
        .exclude(sent_to="")
        .values_list("pk", flat=True)
    )


def reminder_send(*, invitation_id: int) -> bool:
    """Send the one reminder for an invitation, if it is still due; True if sent.

    The reminder is claimed with a conditional update first, so two workers (or a retry) can
    never send it twice.
    """
    now = timezone.now()
    claimed = (
        Invitation.objects.usable(now)
        .filter(pk=invitation_id, reminder_sent_at=None)
        .update(reminder_sent_at=now)
    )
    if not claimed:
        return False
    invitation = Invitation.objects.select_related("session__episode__patient__clinic").get(pk=invitation_id)
    patient = invitation.session.episode.patient
    to = patient.contact_email if invitation.sent_to == "email" else patient.contact_phone
    if not to:
        return False
    messaging.form_link_send(
        channel=invitation.sent_to,
        to=to,
        clinic_name=patient.clinic.name,
        url=links.form_url(links.token_for_salt(invitation.salt)),
        language=patient.language,
        reminder=True,
    )
    return True
