"""Forms that send themselves (issue 16, item 5): a patient's recurring appointments
(``clinics.models.AppointmentSchedule``) become sessions as they come due, and the form link goes
out after each one by the patient's channel. ``manage.py send_due_forms`` runs
:func:`due_forms_send` from cron.

Each appointment is handled once: in one transaction its schedule's watermark (``done_through``)
is moved past it by a conditional UPDATE (of two overlapping runs, one moves it and the other
finds it moved and does nothing), the session is made through ``session_add`` (which refuses a
date before the episode's latest session: numbers follow dates) and the form goes out through
``form_send`` (marked held, link made, sent). If the mail server or SMS gateway fails, the whole
appointment is rolled back and the next run tries it again. What could not be done (no open
episode, no contact for the chosen channel, a date out of order) is reported and not retried.
Reports name the patient by their random code, never their label: cron mails and logs are not
places for patient identifiers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import AppointmentSchedule, FormChannel, Session
from monitoring.collection import sessions
from monitoring.models import Rater, Response

logger = logging.getLogger(__name__)

#: An appointment's form goes out this long after it starts: the session is over by then.
SEND_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class DueForm:
    """What happened to one due appointment: ``sent`` (by ``channel``), or why not, in words
    for the operator (``problem``; empty when the form went out or waits on the tablet)."""

    schedule_id: int
    patient_code: str
    clinic: str
    on: date
    session: int | None = None
    channel: str = ""
    problem: str = ""
    retry: bool = False  # the next run tries again (the gateway failed)

    @property
    def sent(self) -> bool:
        return bool(self.channel)

    def line(self) -> str:
        where = f"{self.clinic}, patient {self.patient_code}, appointment of {self.on:%Y-%m-%d}"
        if self.session is not None:
            where += f" (session {self.session})"
        if self.sent:
            return f"sent by {'email' if self.channel == 'email' else 'text message'}: {where}"
        if not self.problem:
            return f"ready in the clinic (tablet or QR code): {where}"
        page = settings.SITE_URL + reverse("monitoring:patient", args=[self.patient_code])
        return f"{'will retry' if self.retry else 'not sent'}: {where}: {self.problem} ({page})"


def appointment_start(day: date, schedule: AppointmentSchedule) -> datetime:
    """When the appointment on ``day`` starts, in the clinic's time zone."""
    return timezone.make_aware(datetime.combine(day, schedule.time))


def next_due(schedule: AppointmentSchedule, *, now: datetime) -> date | None:
    """The first appointment after the watermark whose form is due at ``now``, if any."""
    days = schedule.appointments(after=schedule.done_through, until=timezone.localtime(now).date())
    return days[0] if days and appointment_start(days[0], schedule) + SEND_AFTER <= now else None


def due_forms_send(*, now: datetime | None = None) -> list[DueForm]:
    """Handle every due appointment of every active patient's schedule, oldest first."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    ids = (
        AppointmentSchedule.objects.filter(patient__is_active=True)
        .filter(Q(done_through__isnull=True) | Q(done_through__lt=today))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    done: list[DueForm] = []
    for schedule_id in ids:
        done += schedule_run(schedule_id=schedule_id, now=now)
    return done


def schedule_run(*, schedule_id: int, now: datetime) -> list[DueForm]:
    """Handle one schedule's due appointments, one transaction each, until none is due or the
    gateway fails (then the next run goes on from there)."""
    done: list[DueForm] = []
    while True:
        schedule = (
            AppointmentSchedule.objects.select_related("patient__clinic").filter(pk=schedule_id).first()
        )
        day = next_due(schedule, now=now) if schedule is not None else None
        if schedule is None or day is None:
            return done
        try:
            with transaction.atomic():
                claimed = AppointmentSchedule.objects.filter(
                    pk=schedule.pk,
                    **(
                        {"done_through": schedule.done_through}
                        if schedule.done_through
                        else {"done_through__isnull": True}
                    ),
                ).update(done_through=day)
                if not claimed:  # another run handled it meanwhile
                    continue
                done.append(_appointment_handle(schedule, day, now=now))
        except Exception as exc:  # the mail server or SMS gateway: nothing of it is kept
            logger.warning("send_due_forms: schedule %s, %s: %s", schedule_id, day, type(exc).__name__)
            done.append(_report(schedule, day, f"sending failed ({type(exc).__name__}: {exc})", retry=True))
            return done


def _report(schedule: AppointmentSchedule, day: date, problem: str, **more: object) -> DueForm:
    return DueForm(
        schedule_id=schedule.pk,
        patient_code=str(schedule.patient.code),
        clinic=schedule.patient.clinic.name,
        on=day,
        problem=problem,
        **more,  # type: ignore[arg-type]
    )


def _appointment_handle(schedule: AppointmentSchedule, day: date, *, now: datetime) -> DueForm:
    """Make the appointment's session (or use the one on that day) and send its form."""
    patient = schedule.patient
    episode = patient.episodes.filter(ended_on=None).first()
    if episode is None:
        return _report(schedule, day, "the patient has no open episode of care; no session was made")
    expiry = timedelta(hours=patient.clinic.link_expiry_hours)
    if appointment_start(day, schedule) + SEND_AFTER + expiry <= now:
        return _report(schedule, day, "missed: its form link would already have expired; no session was made")
    session = episode.sessions.filter(date=day).order_by("-number").first()
    if session is not None and session.status in (Session.Status.CANCELLED, Session.Status.NO_SHOW):
        return _report(
            schedule,
            day,
            f"session {session.number} on that day is marked '{session.get_status_display().lower()}'",
            session=session.number,
        )
    if (
        session is not None
        and Response.objects.filter(session=session, rater=Rater.PATIENT, measure="alliance").exists()
    ):
        return _report(
            schedule, day, "the patient's answers for that day are already in", session=session.number
        )
    try:
        if session is None:
            session, _ = sessions.session_add(
                patient=patient, on=day, status=Session.Status.SCHEDULED, user=None
            )
        sent = sessions.form_send(patient=patient, user=None, session=session)
    except ApplicationError as error:
        return _report(schedule, day, error.message, session=session.number if session else None)
    if sent.missing:
        chosen = "email" if sent.missing == "email address" else "text message"
        return _report(
            schedule,
            day,
            f"{chosen} is chosen for this patient but there is no {sent.missing} on file; the link is "
            "on the session page",
            session=sent.session.number,
        )
    if not sent.channel and patient.form_channel != FormChannel.NONE:
        return _report(
            schedule,
            day,
            "no email address or mobile number on file; the link is on the session page",
            session=sent.session.number,
        )
    return DueForm(
        schedule_id=schedule.pk,
        patient_code=str(patient.code),
        clinic=patient.clinic.name,
        on=day,
        session=sent.session.number,
        channel=sent.channel,
    )
