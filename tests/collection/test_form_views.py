"""The patient form through the test client: what a patient (or a tampered request) gets."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from monitoring.collection.invitations import invitation_create, invitation_revoke
from monitoring.models import Response

pytestmark = pytest.mark.django_db
FULL = {f"item_{n}": "4" for n in range(1, 13)}


@pytest.fixture
def token(session, alice) -> str:
    return invitation_create(session=session, created_by=alice)[1]


def test_the_form_shows_the_clinic_and_every_item_but_no_patient_name(client, token, patient):
    page = client.get(f"/f/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Clinic A" in html
    assert html.count('type="radio"') == 60
    assert "I feel my therapist is on my side." in html
    assert patient.label not in html
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    assert page["Referrer-Policy"] == "no-referrer"


def test_the_form_follows_the_patients_language_and_can_be_switched(client, token, patient):
    patient.language = "de"
    patient.save()
    german = client.get(f"/f/{token}/").content.decode()
    assert 'lang="de"' in german and "Ich vertraue meiner Therapeutin" in german and "Selten" in german
    english = client.get(f"/f/{token}/?lang=en").content.decode()
    assert "I trust my therapist" in english


def test_a_complete_submission_is_stored_once_and_thanks_the_patient(client, token, session):
    response = client.post(f"/f/{token}/", FULL)
    assert response.status_code == 302 and response["Location"].startswith(f"/f/{token}/done/")
    stored = Response.objects.get(session=session)
    assert (stored.source, stored.answers.count()) == ("link", 12)
    thanks = client.get(response["Location"])
    assert "Your answers have been received" in thanks.content.decode()


def test_a_missing_answer_returns_the_form_with_the_other_answers_kept(client, token):
    data = {**FULL, "item_3": "2"}
    del data["item_7"]
    page = client.post(f"/f/{token}/", data)
    html = page.content.decode()
    assert page.status_code == 400
    assert "One statement still needs an answer" in html
    assert 'id="item-7-error"' in html and 'aria-describedby="item-7-error"' in html
    assert 'name="item_3" value="2" required\n               checked' in html
    assert Response.objects.count() == 0


@pytest.mark.parametrize("tampered", ["6", "0", "-1", "four", "4.5", "4; DROP TABLE"])
def test_a_tampered_value_is_refused_with_a_specific_message(client, token, tampered):
    page = client.post(f"/f/{token}/", {**FULL, "item_5": tampered})
    assert page.status_code == 400
    assert "Please choose one of the answers shown for this statement." in page.content.decode()
    assert Response.objects.count() == 0


def test_a_double_submission_ends_with_one_response_and_a_friendly_page(client, token):
    first = client.post(f"/f/{token}/", FULL)
    second = client.post(f"/f/{token}/", FULL)
    other = client.post(f"/f/{token}/", {**FULL, "item_1": "1"})
    assert first.status_code == 302
    assert second.status_code == 200
    assert "Your answers have been received" in second.content.decode()
    assert other.status_code == 410 and "Already received" in other.content.decode()
    assert Response.objects.count() == 1
    assert Response.objects.get().answers.get(item__number=1).value == 4


@pytest.mark.parametrize(
    ("make_bad", "status", "words"),
    [
        (lambda token, inv: "A" * 43, 404, "We could not find this link"),
        (lambda token, inv: (invitation_revoke(invitation=inv), token)[1], 410, "no longer valid"),
    ],
)
def test_bad_links_get_a_calm_page_with_the_right_status(client, session, alice, make_bad, status, words):
    invitation, token = invitation_create(session=session, created_by=alice)
    bad = make_bad(token, invitation)
    for method in (client.get, client.post):
        page = method(f"/f/{bad}/", FULL) if method == client.post else method(f"/f/{bad}/")
        assert page.status_code == status
        assert words in page.content.decode()
    assert Response.objects.count() == 0


def test_an_expired_link_says_so_and_stores_nothing(client, token):
    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        page = client.post(f"/f/{token}/", FULL)
    assert page.status_code == 410
    assert "This link has expired" in page.content.decode()
    assert Response.objects.count() == 0


def test_a_used_link_opened_again_says_already_received(client, token):
    client.post(f"/f/{token}/", FULL)
    page = client.get(f"/f/{token}/")
    assert page.status_code == 410
    assert "Already received" in page.content.decode()


def test_results_are_shown_to_the_patient_only_if_the_clinic_allows(client, token, clinic_a):
    done = client.post(f"/f/{token}/", FULL)["Location"]
    assert "Your answers at a glance" not in client.get(done).content.decode()
    clinic_a.patients_see_results = True
    clinic_a.save()
    html = client.get(done).content.decode()
    assert "Your answers at a glance" in html and "4.0" in html


def test_the_link_token_is_the_forgery_protection(token, session):
    """Browsers post the form with "Origin: null" (no-referrer); the one-time token in the URL,
    not a CSRF cookie, proves the request comes from the patient's link."""
    from django.test import Client

    strict = Client(enforce_csrf_checks=True, headers={"Origin": "null"})
    assert "csrftoken" not in strict.get(f"/f/{token}/").cookies
    assert strict.post(f"/f/{token}/", FULL).status_code == 302
    assert Response.objects.count() == 1
