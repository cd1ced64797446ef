"""The therapist's day with forms (issue 16, item 5): "Send form" from the patient page, session
numbers that follow dates, the tablet picker's order, late forms, and a second tab."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.utils import timezone

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Session
from monitoring.collection.invitations import invitation_create
from monitoring.collection.messaging import ConsoleSmsBackend
from monitoring.models import Invitation, Response
from tests.auth import sign_in

pytestmark = pytest.mark.django_db
FULL = {f"item_{n}": "4" for n in range(1, 13)}


def send(client, patient, session=None):
    return client.post(
        f"/patients/{patient.code}/send-form/", {"session": str(session.code)} if session else {}
    )


# --- Send form ------------------------------------------------------------------------------------


def test_send_form_adds_todays_session_marks_it_held_and_emails_the_link(client, alice, patient, session):
    patient.contact_email = "pat@example.org"
    patient.save()
    sign_in(client, alice)
    answer = send(client, patient)
    today = Session.objects.get(episode=session.episode, number=2)
    assert (today.date, today.status) == (timezone.localdate(), "held")
    assert answer["Location"] == f"/sessions/{today.code}/"
    invitation = Invitation.objects.get(session=today)
    assert invitation.sent_to == "email" and invitation.created_by == alice
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["pat@example.org"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/f/" in line)
    assert client.get(link[link.index("/f/") :]).status_code == 200
    page = client.get(answer["Location"]).content.decode()
    assert "Session 2 added for today: the form link was sent by email" in page


def test_send_form_twice_the_same_day_reuses_the_session_and_the_link(client, alice, patient, session):
    patient.contact_phone = "+49 170 0000000"
    patient.save()
    ConsoleSmsBackend.outbox.clear()
    sign_in(client, alice)
    send(client, patient)
    send(client, patient)
    assert session.episode.sessions.count() == 2
    assert Invitation.objects.usable().count() == 1  # the link in the first text still works
    assert len(ConsoleSmsBackend.outbox) == 2 and ConsoleSmsBackend.outbox[0] == ConsoleSmsBackend.outbox[1]


def test_send_form_uses_todays_scheduled_session_instead_of_adding_one(client, alice, patient, episode):
    booked = clinic_services.session_create(episode=episode, date=timezone.localdate())
    sign_in(client, alice)
    send(client, patient)
    booked.refresh_from_db()
    assert episode.sessions.count() == 1 and booked.status == "held"
    assert Invitation.objects.get().session == booked


def test_without_contact_details_the_link_is_shown_with_a_clear_message(client, alice, patient, session):
    sign_in(client, alice)
    page = client.get(send(client, patient)["Location"]).content.decode()
    assert "there is no email address or mobile number on file for P.A., so nothing was sent" in page
    assert 'id="form-link"' in page and "<svg" in page
    assert Invitation.objects.get().sent_to == "" and not mail.outbox


def test_form_not_in_sends_the_form_of_that_session(client, alice, patient, session):
    patient.contact_email = "pat@example.org"
    patient.save()
    sign_in(client, alice)
    html = client.get(f"/patients/{patient.code}/").content.decode()
    assert "Form not in · send" in html and f'name="session" value="{session.code}"' in html
    send(client, patient, session)
    assert Invitation.objects.get().session == session and len(mail.outbox) == 1
    assert session.episode.sessions.count() == 1


def test_send_form_refuses_a_session_with_answers_and_a_future_one(client, alice, patient, session, episode):
    sign_in(client, alice)
    client.post(f"/sessions/{session.code}/enter/patient/", FULL)
    refused = client.get(send(client, patient, session)["Location"]).content.decode()
    assert "answers for session 1 are already in" in refused
    future = clinic_services.session_create(episode=episode, date=timezone.localdate() + timedelta(days=3))
    assert (
        "send its form once it has taken place"
        in client.get(send(client, patient, future)["Location"]).content.decode()
    )
    assert not Invitation.objects.filter(session=future).exists()
    future.refresh_from_db()
    assert future.status == "scheduled"


def test_send_form_is_audited_and_refused_to_outsiders(client, alice, bob, charlie, patient, session):
    for outsider in (bob, charlie):
        sign_in(client, outsider)
        assert send(client, patient).status_code == 404
        assert send(client, patient, session).status_code == 404
        client.logout()
    assert session.episode.sessions.count() == 1 and not Invitation.objects.exists()
    sign_in(client, alice)
    send(client, patient)
    entry = LogEntry.objects.get_for_object(Invitation.objects.get()).get()
    assert entry.actor == alice and entry.action == LogEntry.Action.CREATE


def test_a_failed_send_leaves_no_session_behind(client, alice, patient, session, settings):
    patient.contact_phone = "+49 170 0000000"
    patient.save()
    settings.BORDIN_SMS_BACKEND = "monitoring.collection.messaging.NoSmsBackend"
    sign_in(client, alice)
    page = client.get(send(client, patient)["Location"]).content.decode()
    assert "Text messages are not set up for this clinic" in page
    assert session.episode.sessions.count() == 1 and not Invitation.objects.exists()


# --- Session numbers follow dates ----------------------------------------------------------------


def test_a_session_dated_before_the_latest_is_refused_on_the_page(client, alice, patient, session):
    sign_in(client, alice)
    client.post(f"/patients/{patient.code}/sessions/", {"date": "2026-09-08"})
    answer = client.post(f"/patients/{patient.code}/sessions/", {"date": "2026-09-05"})
    page = client.get(answer["Location"]).content.decode()
    assert "Session 2 is already on 8 Sep 2026, so a new session 3 cannot be dated 5 Sep 2026" in page
    assert [s.date for s in session.episode.sessions.order_by("number")] == [
        date(2026, 9, 1),
        date(2026, 9, 8),
    ]
    client.post(f"/patients/{patient.code}/sessions/", {"date": "2026-09-08"})  # the same day is fine
    assert session.episode.sessions.count() == 3


def test_the_service_refuses_an_earlier_date_whatever_the_caller(episode, session):
    with pytest.raises(ApplicationError) as refused:
        clinic_services.session_create(episode=episode, date=date(2026, 8, 31))
    assert refused.value.code == "date_order"
    assert clinic_services.session_create(episode=episode, date=date(2026, 9, 2)).number == 2


# --- The tablet picker ---------------------------------------------------------------------------


def test_the_tablet_lists_today_first_then_the_past_by_recency_and_no_future(client, alice, patient, episode):
    today = timezone.localdate()
    for offset in (-5, -1, 0, 2):
        Session.objects.create(
            episode=episode, number=offset + 10, date=today + timedelta(days=offset), status="scheduled"
        )
    sign_in(client, alice)
    html = client.get("/kiosk/").content.decode()
    numbers = [int(part.split(" ")[0]) for part in html.split("· session ")[1:]]
    assert numbers == [10, 9, 5]
    assert "Today" in html.split("· session 10")[1].split("</div>")[0]


# --- The form after a later day, and a second tab ------------------------------------------------


def test_a_late_form_speaks_of_the_most_recent_session(client, alice, session, patient):
    token = invitation_create(session=session, created_by=alice)[1]
    html = client.get(f"/f/{token}/").content.decode()
    assert "How was your most recent session?" in html and "How was today&#x27;s session?" not in html
    assert "your most recent session, on Tuesday 1 September" in html
    patient.language = "de"
    patient.save()
    german = client.get(f"/f/{token}/").content.decode()
    assert "Wie war Ihre letzte Sitzung?" in german and "Dienstag 1 September" in german


def test_a_form_on_the_day_of_the_session_says_today(client, alice, session):
    session.date = timezone.localdate()
    session.save()
    token = invitation_create(session=session, created_by=alice)[1]
    html = client.get(f"/f/{token}/").content.decode()
    assert "How was today&#x27;s session?" in html and "most recent session" not in html


def test_a_second_tab_with_other_answers_gets_already_received_and_changes_nothing(client, alice, session):
    token = invitation_create(session=session, created_by=alice)[1]
    first = client.post(f"/f/{token}/", FULL)
    assert first.status_code == 302
    second = client.post(f"/f/{token}/", {**FULL, "item_1": "1", "item_2": "5"})
    html = second.content.decode()
    assert second.status_code == 410
    assert "Already received" in html and "were not saved: the ones sent first count" in html
    assert "Your answers have been received" not in html
    stored = Response.objects.get()
    assert dict(stored.answers.values_list("item__number", "value")) == {n: 4 for n in range(1, 13)}
    # The same answers again (a double click) still thank the patient.
    again = client.post(f"/f/{token}/", FULL)
    assert again.status_code == 200 and "Your answers have been received" in again.content.decode()
    assert Response.objects.count() == 1


def test_send_form_moves_the_next_booked_appointment_to_today(client, alice, patient, session, episode):
    today = timezone.localdate()
    booked = clinic_services.session_create(episode=episode, date=today + timedelta(days=4))
    later = clinic_services.session_create(episode=episode, date=today + timedelta(days=11))
    sign_in(client, alice)
    page = client.get(send(client, patient)["Location"]).content.decode()
    booked.refresh_from_db()
    later.refresh_from_db()
    assert (booked.date, booked.status) == (today, "held") and later.date == today + timedelta(days=11)
    assert episode.sessions.count() == 3 and Invitation.objects.get().session == booked
    assert f"Session 2 (booked for {booked.date + timedelta(days=4):%-d %b}) moved to today" in page
