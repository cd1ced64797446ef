"""Forms that send themselves (issue 16, item 5): recurring appointments make their sessions as
they come due and send the form link by the patient's channel, through ``manage.py
send_due_forms``; twice sends nothing twice; what cannot be sent is reported, not crashed on."""

from __future__ import annotations

import io
import smtplib
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core import mail
from django.core.management import call_command

from clinics import appointments
from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import AppointmentSchedule, Patient, Session
from monitoring.collection import schedules
from monitoring.collection.messaging import ConsoleSmsBackend
from monitoring.models import Invitation
from tests.auth import sign_in

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2026, 11, 2)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def weekly(patient, episode, alice) -> AppointmentSchedule:
    """P.A. (email on file) every Monday at 10:00 from 2 November 2026; session 1 was on 1 Sept."""
    Session.objects.create(episode=episode, number=1, date=date(2026, 9, 1), status="held")
    patient.contact_email = "pat@example.org"
    patient.save()
    return appointments.schedule_set(
        patient=patient, repeat="weekly", time=time(10), starts_on=MONDAY, by=alice, today=MONDAY
    )


def run(now: datetime) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with time_machine.travel(now, tick=False):
        call_command("send_due_forms", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- The schedule ----------------------------------------------------------------------------------


def test_appointments_follow_the_repeat_until_the_last_date():
    weekly = AppointmentSchedule(repeat="weekly", starts_on=MONDAY, ends_on=MONDAY + timedelta(days=21))
    assert weekly.appointments(until=date(2027, 1, 1)) == [MONDAY + timedelta(days=7 * k) for k in range(4)]
    assert weekly.appointments(after=MONDAY, until=MONDAY + timedelta(days=8)) == [MONDAY + timedelta(days=7)]
    fortnightly = AppointmentSchedule(repeat="fortnightly", starts_on=MONDAY)
    assert fortnightly.appointments(until=MONDAY + timedelta(days=30)) == [
        MONDAY,
        MONDAY + timedelta(days=14),
        MONDAY + timedelta(days=28),
    ]
    listed = AppointmentSchedule(repeat="dates", dates=["2026-11-20", "2026-11-05"])
    assert listed.appointments(until=date(2026, 11, 30)) == [date(2026, 11, 5), date(2026, 11, 20)]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"repeat": "daily"}, "Choose how often"),
        ({"time": None}, "time of day"),
        ({"starts_on": None}, "date of the first appointment"),
        ({"starts_on": MONDAY - timedelta(days=1)}, "is in the past"),
        ({"ends_on": MONDAY - timedelta(days=7)}, "cannot be before the first"),
        ({"repeat": "dates", "dates": []}, "List the appointment dates"),
        ({"repeat": "dates", "dates": [date(2026, 10, 1)]}, "1 Oct 2026 is in the past"),
        ({"repeat": "dates", "dates": [date(2099, 1, 1)]}, "not a plausible date"),
    ],
)
def test_a_schedule_that_cannot_be_is_refused_clearly(patient, episode, alice, values, words):
    given = {"repeat": "weekly", "time": time(10), "starts_on": MONDAY, **values}
    with pytest.raises(ApplicationError) as refused:
        appointments.schedule_set(patient=patient, by=alice, today=MONDAY, **given)
    assert words in refused.value.message
    assert not AppointmentSchedule.objects.exists()


def test_a_schedule_needs_an_open_episode(patient, alice):
    with pytest.raises(ApplicationError, match="no open episode"):
        appointments.schedule_set(patient=patient, repeat="weekly", time=time(10), starts_on=MONDAY, by=alice)


def test_a_chosen_channel_needs_its_contact_on_file(patient):
    with pytest.raises(ApplicationError, match=r"need a mobile number on file for P\.A\."):
        appointments.patient_channel_set(patient=patient, channel="sms")
    with pytest.raises(ApplicationError, match="Choose how form links"):
        appointments.patient_channel_set(patient=patient, channel="pigeon")
    patient.refresh_from_db()
    assert patient.form_channel == ""
    appointments.patient_channel_set(patient=patient, channel="none")
    with pytest.raises(ApplicationError, match="need an email address"):
        clinic_services.patient_update(
            patient=patient, label="P.A.", external_id="", language="en", contact_email="", contact_phone="",
            form_channel="email",
        )  # fmt: skip


# --- send_due_forms --------------------------------------------------------------------------------


def test_an_appointment_becomes_a_session_and_its_form_goes_out_an_hour_after_it_starts(weekly, episode):
    out, err = run(at(MONDAY, 10, 59))
    assert "0 due appointment(s)" in out and not mail.outbox and episode.sessions.count() == 1
    out, err = run(at(MONDAY, 11, 0))
    session = episode.sessions.get(number=2)
    assert (session.date, session.status) == (MONDAY, "held")
    invitation = Invitation.objects.get(session=session)
    assert invitation.sent_to == "email" and invitation.created_by is None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["pat@example.org"]
    assert "sent by email: Clinic A, patient" in out and "(session 2)" in out and not err
    assert "1 due appointment(s): 1 form link(s) sent, 0 reported." in out


def test_running_twice_sends_nothing_twice(weekly, episode):
    run(at(MONDAY, 12))
    out, _ = run(at(MONDAY, 12, 15))
    assert "0 due appointment(s)" in out
    assert len(mail.outbox) == 1 and episode.sessions.count() == 2
    run(at(MONDAY + timedelta(days=7), 11, 30))  # the next week's
    assert len(mail.outbox) == 2 and list(episode.sessions.values_list("number", "date")) == [
        (1, date(2026, 9, 1)),
        (2, MONDAY),
        (3, MONDAY + timedelta(days=7)),
    ]


def test_a_text_message_when_the_patient_chose_it(weekly, episode, patient):
    patient.contact_phone = "+49 170 0000000"
    patient.save()
    appointments.patient_channel_set(patient=patient, channel="sms")
    ConsoleSmsBackend.outbox.clear()
    run(at(MONDAY, 11))
    assert not mail.outbox and len(ConsoleSmsBackend.outbox) == 1
    assert Invitation.objects.get(session__number=2).sent_to == "sms"


def test_in_the_clinic_the_session_is_made_and_the_link_waits(weekly, episode, patient):
    appointments.patient_channel_set(patient=patient, channel="none")
    out, err = run(at(MONDAY, 11))
    assert not mail.outbox and not err
    assert "ready in the clinic" in out
    assert Invitation.objects.open().get().session.number == 2


def test_a_patient_without_contact_details_is_reported_by_code_not_crashed_on(weekly, patient, episode):
    Patient.objects.filter(pk=patient.pk).update(contact_email="")
    out, err = run(at(MONDAY, 11))
    assert "not sent: Clinic A, patient " + str(patient.code) in err
    assert "no email address or mobile number on file" in err and f"/patients/{patient.code}/" in err
    assert "P.A." not in out + err  # no patient label in cron mail
    assert Invitation.objects.open().get().session.number == 2  # the link is on the session page
    assert "0 form link(s) sent, 1 reported" in out
    _, again = run(at(MONDAY, 11, 15))
    assert not again  # reported once


def test_a_chosen_channel_whose_contact_went_missing_is_reported(weekly, patient):
    Patient.objects.filter(pk=patient.pk).update(contact_email="", form_channel="email")
    _, err = run(at(MONDAY, 11))
    assert "email is chosen for this patient but there is no email address on file" in err
    assert not mail.outbox


def test_a_session_already_on_that_day_is_used_not_doubled(weekly, episode):
    booked = clinic_services.session_create(episode=episode, date=MONDAY)
    run(at(MONDAY, 11))
    booked.refresh_from_db()
    assert episode.sessions.count() == 2 and booked.status == "held" and len(mail.outbox) == 1


def test_a_date_out_of_order_is_reported_and_no_session_made(weekly, episode):
    clinic_services.session_create(episode=episode, date=MONDAY + timedelta(days=3))
    _, err = run(at(MONDAY, 11))
    assert "session numbers follow dates" in err
    assert episode.sessions.count() == 2 and not mail.outbox


def test_a_mail_server_failure_leaves_nothing_and_the_next_run_sends(weekly, episode, monkeypatch):
    from monitoring.collection import messaging

    def refused(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("gone")

    with monkeypatch.context() as patched:
        patched.setattr(messaging, "send_mail", refused)
        _, err = run(at(MONDAY, 11))
    assert "will retry" in err and "SMTPServerDisconnected" in err
    assert episode.sessions.count() == 1 and not Invitation.objects.exists()
    run(at(MONDAY, 11, 15))
    assert episode.sessions.count() == 2 and len(mail.outbox) == 1


def test_appointments_missed_for_longer_than_a_link_lives_are_reported_not_sent(weekly, episode):
    _, err = run(at(MONDAY + timedelta(days=4), 12))  # 72 h links: Monday's is past
    assert "missed" in err and episode.sessions.count() == 1 and not mail.outbox


def test_discharged_patients_get_nothing(weekly, patient, episode):
    clinic_services.patient_discharge(patient=patient, on=MONDAY)
    out, _ = run(at(MONDAY, 11))
    assert "0 due appointment(s)" in out and not mail.outbox


def test_two_overlapping_runs_send_once(weekly, episode):
    with time_machine.travel(at(MONDAY, 11), tick=False):
        stale = AppointmentSchedule.objects.get()
        first = schedules.due_forms_send()
        # A second run that read the schedule before the first moved its watermark.
        claimed = AppointmentSchedule.objects.filter(pk=stale.pk, done_through=stale.done_through).update(
            done_through=MONDAY
        )
    assert [r.sent for r in first] == [True] and claimed == 0 and len(mail.outbox) == 1


def test_erasing_the_patient_erases_the_schedule(weekly, patient, dana):
    from monitoring.clinic_admin.services import patient_erase

    patient_erase(patient=patient, by=dana, confirm="P.A.")
    assert not AppointmentSchedule.objects.exists()


# --- The patient page ------------------------------------------------------------------------------


def post(client, patient, **data):
    return client.post(f"/patients/{patient.code}/appointments/", data)


def test_the_therapist_plans_appointments_on_the_patient_page_audited(client, alice, patient, episode):
    patient.contact_phone = "+49 170 0000000"
    patient.save()
    sign_in(client, alice)
    page = client.get(f"/patients/{patient.code}/").content.decode()
    assert (
        'id="appointments-heading">Appointments and form links' in page
        and "No recurring appointments" in page
    )
    answer = post(client, patient, channel="sms", repeat="fortnightly", starts_on="2099-01-01", time="09:30")
    assert "not a plausible date" in client.get(answer["Location"]).content.decode()
    start = date.today() + timedelta(days=2)
    answer = post(
        client, patient, channel="sms", repeat="fortnightly", starts_on=start.isoformat(), time="09:30"
    )
    assert answer["Location"] == f"/patients/{patient.code}/#appointments"
    schedule = AppointmentSchedule.objects.get(patient=patient)
    assert (schedule.repeat, schedule.starts_on, schedule.time, schedule.created_by) == (
        "fortnightly",
        start,
        time(9, 30),
        alice,
    )
    patient.refresh_from_db()
    assert patient.form_channel == "sms"
    page = client.get(f"/patients/{patient.code}/").content.decode()
    assert "<strong>Every two weeks</strong>" in page and "at 09:30" in page and "by text message" in page
    entry = LogEntry.objects.get_for_object(schedule).get()
    assert entry.actor == alice and entry.action == LogEntry.Action.CREATE
    assert (
        LogEntry.objects.get_for_object(patient)
        .filter(actor=alice, changes__icontains="form_channel")
        .exists()
    )

    post(client, patient, channel="sms", repeat="")
    assert not AppointmentSchedule.objects.exists()


def test_a_list_of_dates_and_clear_errors_that_change_nothing(client, alice, patient, episode):
    sign_in(client, alice)
    soon = [date.today() + timedelta(days=d) for d in (3, 10)]
    post(client, patient, repeat="dates", dates=f"{soon[1]}\n{soon[0]}", time="14:00")
    assert AppointmentSchedule.objects.get().dates == [d.isoformat() for d in soon]
    answer = post(client, patient, channel="email", repeat="weekly", starts_on=str(soon[0]), time="14:00")
    page = client.get(answer["Location"]).content.decode()
    assert "Nothing was changed. Form links by email need an email address on file for P.A." in page
    assert AppointmentSchedule.objects.get().repeat == "dates"
    page = client.get(post(client, patient, repeat="dates", dates="next monday", time="x")["Location"])
    assert "is not a time of day" in page.content.decode()


@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_others_cannot_plan_a_patients_appointments(client, request, patient, episode, who):
    sign_in(client, request.getfixturevalue(who))
    answer = post(client, patient, repeat="weekly", starts_on=str(date.today()), time="10:00")
    assert answer.status_code == 404 and not AppointmentSchedule.objects.exists()


def test_the_clinic_admin_sets_the_channel_on_the_patients_record(client, dana, patient, clinic_a):
    sign_in(client, dana)
    url = f"/clinic/{clinic_a.slug}/patients/{patient.code}/"
    page = client.get(url).content.decode()
    assert "Form links go by" in page and "Email if on file, else text message" in page
    data = {"form": "edit", "label": "P.A.", "external_id": "EXT-1", "language": "en"}
    client.post(url, {**data, "contact_email": "p@example.org", "contact_phone": "", "form_channel": "email"})
    patient.refresh_from_db()
    assert patient.form_channel == "email"
