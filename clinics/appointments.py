"""Writes for a patient's recurring appointments and the channel their form links go by (issue
16, item 5). The sessions and links themselves are made by ``monitoring.collection.schedules``
as the appointments come due; this only plans."""

from __future__ import annotations

from datetime import date, timedelta
from datetime import time as dt_time

from django.contrib.auth.models import User
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import AppointmentSchedule, FormChannel, Patient
from clinics.validation import check_date


def channel_check(patient: Patient) -> None:
    """A chosen channel needs its contact on file (blank and "none" need none)."""
    if patient.form_channel not in ("", *FormChannel.values):
        raise ApplicationError("Choose how form links reach the patient: email, text message or none.")
    need = {"email": ("contact_email", "an email address"), "sms": ("contact_phone", "a mobile number")}
    if patient.form_channel in need:
        field, what = need[patient.form_channel]
        if not getattr(patient, field):
            raise ApplicationError(
                f"Form links by {FormChannel(patient.form_channel).label.lower()} need {what} on file for "
                f"{patient.label}. Add it to the patient's record, or choose another way.",
                code="no_contact",
            )


def patient_channel_set(*, patient: Patient, channel: str) -> Patient:
    """How form links reach the patient: email, text message, "none" (in the clinic: tablet or
    QR code), or "" (email if on file, else text message). Audited with the patient record."""
    patient.form_channel = channel
    channel_check(patient)
    patient.save(update_fields=["form_channel"])
    return patient


def schedule_set(
    *,
    patient: Patient,
    repeat: str,
    time: dt_time | None,
    by: User | None,
    starts_on: date | None = None,
    ends_on: date | None = None,
    dates: list[date] | None = None,
    today: date | None = None,
) -> AppointmentSchedule:
    """Set (or replace) the patient's recurring appointments: weekly or every two weeks from
    ``starts_on`` (until ``ends_on``, if given), or on ``dates``; at ``time``. Appointments are
    from today on; a replaced schedule keeps what was already handled (today's form is not sent
    twice). Audited (the schedule is in the trail with who changed it)."""
    today = today or timezone.localdate()
    if repeat not in AppointmentSchedule.Repeat.values:
        raise ApplicationError("Choose how often: every week, every two weeks, or on the dates listed.")
    if time is None:
        raise ApplicationError("Give the time of day the appointments start.")
    if not patient.episodes.filter(ended_on=None).exists():
        raise ApplicationError(
            f"{patient.label} has no open episode of care; open one before planning appointments.",
            code="no_episode",
        )
    days = sorted(set(dates or []))
    if repeat == AppointmentSchedule.Repeat.DATES:
        if not days:
            raise ApplicationError("List the appointment dates, one per line or separated by commas.")
        if len(days) > AppointmentSchedule.MAX_DATES:
            raise ApplicationError(
                f"At most {AppointmentSchedule.MAX_DATES} dates fit in one list; for a longer course "
                "choose every week or every two weeks."
            )
        starts_on, ends_on = None, None
    elif starts_on is None:
        raise ApplicationError("Give the date of the first appointment.")
    else:
        if ends_on is not None and ends_on < starts_on:
            raise ApplicationError("The last appointment cannot be before the first.")
        days = [starts_on] + ([ends_on] if ends_on else [])
    for day in days:
        check_date(day, what="An appointment date")
        if day < today:
            raise ApplicationError(
                f"{day:%-d %b %Y} is in the past: appointments are planned from today on. Add past "
                "sessions on the patient page instead."
            )
    schedule = AppointmentSchedule.objects.filter(patient=patient).first() or AppointmentSchedule(
        patient=patient, created_by=by
    )
    schedule.repeat = repeat
    schedule.time = time
    schedule.starts_on = starts_on
    schedule.ends_on = ends_on
    schedule.dates = [d.isoformat() for d in days] if repeat == AppointmentSchedule.Repeat.DATES else []
    # Appointments before today were not planned by this schedule: none is sent afterwards.
    yesterday = today - timedelta(days=1)
    schedule.done_through = max(schedule.done_through or yesterday, yesterday)
    schedule.save()
    return schedule


def schedule_stop(*, patient: Patient) -> bool:
    """No more recurring appointments for the patient (the sessions already made stay)."""
    deleted, _ = AppointmentSchedule.objects.filter(patient=patient).delete()
    return bool(deleted)
