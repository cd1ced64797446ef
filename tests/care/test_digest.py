"""The e-mail digest (issue 16, item 6): news of the caseload, no patient named, sent once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from clinics.models import Patient
from monitoring.care.digest import digests_send
from monitoring.models import DigestSettings, Notification
from tests.auth import sign_in
from tests.care.test_dashboards import import_cohort

pytestmark = pytest.mark.django_db


@pytest.fixture
def news(clinic_a, alice):
    """Two of alice's patients with new attention rows (unrepaired ruptures), one steady."""
    import_cohort(clinic_a, alice, 2, 10, scenarios={"rupture_unrepaired": 1}, prefix="r")
    import_cohort(clinic_a, alice, 1, 10, seed=8, scenarios={"stable": 1}, prefix="s")
    patients = set(Notification.objects.filter(user=alice).values_list("flag__episode__patient", flat=True))
    assert len(patients) == 2
    return patients


def test_a_digest_counts_the_patients_with_news_and_names_none(news, clinic_a, alice):
    done = digests_send()
    assert done["sent"] == 1 and len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [alice.email] and message.subject == "Bordin: news on your caseload"
    assert f"2 patients on your caseload at {clinic_a.name} need attention" in message.body
    assert "/account/notifications/" in message.body and "Sign in to see who and why" in message.body
    for patient in Patient.objects.filter(clinic=clinic_a):
        assert patient.label not in message.body and str(patient.code) not in message.body
    assert not any(
        word in message.body.lower() for word in ("rupture", "phq", "symptom", "alliance", "session")
    )


def test_a_digest_goes_once_a_day_and_only_with_something_new(news, alice):
    now = timezone.now()
    digests_send(now=now)
    assert digests_send(now=now + timedelta(hours=2)) == {"sent": 0, "nothing_new": 0, "failed": 0}
    # A day later nothing is new (the same notifications were in the last digest): no mail.
    assert digests_send(now=now + timedelta(hours=21))["nothing_new"] == 1
    assert len(mail.outbox) == 1


def test_read_news_is_not_mailed(news, alice):
    Notification.objects.filter(user=alice).update(read_at=timezone.now())
    assert digests_send()["nothing_new"] == 1 and mail.outbox == []


def test_weekly_and_off_are_respected(news, alice):
    DigestSettings.objects.create(user=alice, frequency="off")
    assert digests_send()["sent"] == 0 and mail.outbox == []
    DigestSettings.objects.filter(user=alice).update(
        frequency="weekly", last_sent_at=timezone.now() - timedelta(days=3)
    )
    Notification.objects.filter(user=alice).update(created_at=timezone.now())  # news after that digest
    assert digests_send()["sent"] == 0
    assert digests_send(now=timezone.now() + timedelta(days=4))["sent"] == 1


def test_a_mail_server_error_gives_the_digest_back_for_the_next_run(news, alice, monkeypatch):
    import monitoring.care.digest as digest

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(digest, "send_mail", broken)
    assert digests_send()["failed"] == 1
    assert DigestSettings.objects.get(user=alice).last_sent_at is None
    monkeypatch.undo()
    assert digests_send()["sent"] == 1 and len(mail.outbox) == 1


def test_the_command_reports_what_it_did(news, capsys):
    call_command("send_digests")
    assert "1 digest(s) sent, 0 with nothing new, 0 failed." in capsys.readouterr().out


def test_a_therapist_chooses_how_often_and_a_bad_choice_changes_nothing(client, alice):
    sign_in(client, alice)
    page = client.get("/account/notifications/")
    assert page.status_code == 200 and "Once a day, when something is new" in page.content.decode()
    assert client.post("/account/notifications/", {"frequency": "weekly"}).status_code == 302
    assert DigestSettings.objects.get(user=alice).frequency == "weekly"
    answer = client.post("/account/notifications/", {"frequency": "hourly"}, follow=True)
    assert "Choose how often the digest should come." in answer.content.decode()
    assert DigestSettings.objects.get(user=alice).frequency == "weekly"
