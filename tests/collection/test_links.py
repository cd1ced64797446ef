"""Form links: creation, single use, expiry, revocation, and what the patient sees."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Session
from clinics.tokens import token_hash
from monitoring.collection import links
from monitoring.collection.invitations import (
    invitation_create,
    invitation_for_token,
    invitation_revoke,
    invitation_send,
    reminder_send,
    reminders_due,
    session_mark_held,
)
from monitoring.collection.messaging import ConsoleSmsBackend
from monitoring.collection.responses import submission_create
from monitoring.models import Invitation, Response

pytestmark = pytest.mark.django_db
FULL = {n: 4 for n in range(1, 13)}


def test_a_token_has_256_bits_and_only_its_hash_is_stored(session, alice):
    invitation, token = invitation_create(session=session, created_by=alice)
    assert len(token) == 43  # base64url of 32 bytes
    stored = Invitation.objects.filter(pk=invitation.pk).values()[0]
    assert token not in str(stored)
    assert invitation.token_hash == token_hash(token)
    assert links.token_for_salt(invitation.salt) == token


def test_the_link_carries_no_personal_data(session, alice, patient):
    _, token = invitation_create(session=session, created_by=alice)
    url = links.form_url(token)
    assert url == f"http://127.0.0.1:8000/f/{token}/"
    for personal in (patient.label, str(patient.code), patient.external_id, str(session.code)):
        assert personal not in url


def test_a_link_works_once(session, alice):
    _, token = invitation_create(session=session, created_by=alice)
    submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    with pytest.raises(ApplicationError) as caught:
        submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    assert caught.value.code == "used"
    assert Response.objects.count() == 1


def test_a_link_expires_after_the_clinic_setting(session, alice, clinic_a):
    clinic_a.link_expiry_hours = 48
    clinic_a.save()
    _, token = invitation_create(session=session, created_by=alice)
    with time_machine.travel(timezone.now() + timedelta(hours=47, minutes=59)):
        submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    _, token2 = invitation_create(
        session=Session.objects.create(episode=session.episode, number=2, date=session.date, status="held"),
        created_by=alice,
    )
    with (
        time_machine.travel(timezone.now() + timedelta(hours=48, minutes=1)),
        pytest.raises(ApplicationError) as caught,
    ):
        submission_create(invitation=invitation_for_token(token=token2), answers=FULL)
    assert caught.value.code == "expired"
    assert Response.objects.count() == 1


def test_a_revoked_link_stores_nothing(session, alice):
    invitation, token = invitation_create(session=session, created_by=alice)
    invitation_revoke(invitation=invitation)
    with pytest.raises(ApplicationError) as caught:
        submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    assert caught.value.code == "revoked"
    assert Response.objects.count() == 0


def test_a_new_link_replaces_the_old_one(session, alice):
    _, old = invitation_create(session=session, created_by=alice)
    _, new = invitation_create(session=session, created_by=alice)
    with pytest.raises(ApplicationError, match="replaced or withdrawn"):
        submission_create(invitation=invitation_for_token(token=old), answers=FULL)
    submission_create(invitation=invitation_for_token(token=new), answers=FULL)


def test_an_unknown_token_is_refused(session):
    with pytest.raises(ApplicationError) as caught:
        invitation_for_token(token="x" * 43)
    assert caught.value.code == "unknown"


def test_a_link_is_bound_to_its_own_session(session, alice, episode):
    other = Session.objects.create(episode=episode, number=2, date=session.date, status="held")
    _, token = invitation_create(session=session, created_by=alice)
    response = submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    assert response.session == session
    assert not other.responses.exists()


def test_no_link_for_a_session_not_yet_held(episode, alice):
    scheduled = Session.objects.create(episode=episode, number=3, date=episode.started_on)
    with pytest.raises(ApplicationError, match="Mark the session as held"):
        invitation_create(session=scheduled, created_by=alice)
    invitation, _ = session_mark_held(session=scheduled, user=alice)
    assert invitation.session.status == "held"


def test_an_incomplete_submission_stores_nothing_and_keeps_the_link(session, alice):
    _, token = invitation_create(session=session, created_by=alice)
    with pytest.raises(ApplicationError) as caught:
        submission_create(invitation=invitation_for_token(token=token), answers={n: 4 for n in range(1, 12)})
    assert caught.value.problems == ["No answer for item 12."]
    assert Response.objects.count() == 0
    submission_create(invitation=invitation_for_token(token=token), answers=FULL)


def test_the_email_holds_only_the_clinic_name_and_the_link(session, alice, patient):
    patient.contact_email = "pat@example.org"
    patient.save()
    invitation, token = invitation_create(session=session, created_by=alice)
    invitation_send(invitation=invitation, channel="email")
    message = mail.outbox[-1]
    assert message.to == ["pat@example.org"]
    assert links.form_url(token) in message.body
    assert "Clinic A" in message.subject
    for private in (patient.label, patient.external_id, alice.get_full_name(), "rupture", "alliance"):
        assert private not in message.body + message.subject


def test_sending_without_a_contact_says_what_is_missing(session, alice):
    invitation, _ = invitation_create(session=session, created_by=alice)
    with pytest.raises(ApplicationError, match="no mobile number on file"):
        invitation_send(invitation=invitation, channel="sms")


def test_a_reminder_goes_out_once_after_the_delay(session, alice, patient, clinic_a):
    patient.contact_phone = "+49 170 0000000"
    patient.save()
    clinic_a.reminder_delay_hours = 24
    clinic_a.save()
    ConsoleSmsBackend.outbox.clear()
    invitation, token = invitation_create(session=session, created_by=alice)
    invitation_send(invitation=invitation, channel="sms")
    assert reminders_due() == []
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert reminders_due() == [invitation.pk]
        assert reminder_send(invitation_id=invitation.pk) is True
        assert reminder_send(invitation_id=invitation.pk) is False
        assert reminders_due() == []
    assert len(ConsoleSmsBackend.outbox) == 2
    assert ConsoleSmsBackend.outbox[-1] == ("+49 170 0000000", f"Clinic A: {links.form_url(token)}")


def test_no_reminder_once_the_form_is_done(session, alice, patient):
    patient.contact_email = "pat@example.org"
    patient.save()
    invitation, token = invitation_create(session=session, created_by=alice)
    invitation_send(invitation=invitation, channel="email")
    submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    with time_machine.travel(timezone.now() + timedelta(hours=30)):
        assert reminders_due() == []
        assert reminder_send(invitation_id=invitation.pk) is False
