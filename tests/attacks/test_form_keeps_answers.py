"""Issue 14, item 8: when the server cannot store a patient's answers (the database down while
they post), the form comes back as a calm 503 with their choices kept, and sending again stores
them exactly once."""

from __future__ import annotations

import re

import pytest
from django.db import OperationalError

from monitoring.collection import views
from monitoring.collection.invitations import invitation_create
from monitoring.models import Answer, Invitation, Response

pytestmark = pytest.mark.django_db
CHOSEN = {f"item_{n}": str(1 + n % 5) for n in range(1, 13)}


@pytest.fixture
def token(session, alice) -> str:
    return invitation_create(session=session, created_by=alice)[1]


def checked(html: str) -> dict[str, str]:
    """The radio buttons the page shows as chosen."""
    return dict(re.findall(r'name="(item_\d+)" value="(\d)"[^>]*\bchecked\b', html))


def test_the_database_failing_at_the_store_step_keeps_the_answers_for_a_resend(client, token, monkeypatch):
    original = Answer.objects.bulk_create

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    # The link is claimed first, in the same transaction: the failure comes after the claim.
    monkeypatch.setattr(Answer.objects, "bulk_create", database_gone)
    page = client.post(f"/f/{token}/", CHOSEN)
    html = page.content.decode()
    assert page.status_code == 503
    assert page["Retry-After"] == "30"
    assert "no-store" in page["Cache-Control"]
    assert "Your answers are not saved yet" in html
    assert "Traceback" not in html and "OperationalError" not in html
    assert checked(html) == CHOSEN  # every choice kept
    assert 'id="alliance-form"' in html  # and the form to send them again
    assert not Response.objects.exists()
    assert Invitation.objects.get().used_at is None  # the claim was rolled back with the answers

    monkeypatch.setattr(Answer.objects, "bulk_create", original)
    again = client.post(f"/f/{token}/", CHOSEN)
    assert again.status_code == 302 and again["Location"].startswith(f"/f/{token}/done/")
    third = client.post(f"/f/{token}/", CHOSEN)  # an impatient third press
    assert third.status_code == 200 and "Your answers have been received" in third.content.decode()
    stored = Response.objects.get()
    assert {f"item_{n}": str(v) for n, v in stored.answers.values_list("item__number", "value")} == CHOSEN


def test_a_failed_service_call_shows_the_form_again_in_the_patients_language(
    client, token, patient, monkeypatch
):
    patient.language = "de"
    patient.save()
    real = views.submission_create
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database system is starting up")
        return real(**kwargs)

    monkeypatch.setattr(views, "submission_create", flaky)
    page = client.post(f"/f/{token}/", CHOSEN)
    html = page.content.decode()
    assert page.status_code == 503
    assert 'lang="de"' in html and "Selten" in html
    assert "Ihre Antworten sind noch nicht gespeichert" in html and "„Antworten senden“" in html
    assert checked(html) == CHOSEN
    assert client.post(f"/f/{token}/", CHOSEN).status_code == 302
    assert Response.objects.count() == 1


def test_the_database_down_before_the_link_is_found_keeps_the_answers_as_hidden_fields(
    client, token, monkeypatch
):
    def database_down(**kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(views, "invitation_for_token", database_down)
        page = client.post(f"/f/{token}/", {**CHOSEN, "lang": "en", "csrfmiddlewaretoken": "x"})
        opened = client.get(f"/f/{token}/")
    html = page.content.decode()
    assert page.status_code == 503 and page["Retry-After"] == "30"
    assert "Your answers are not saved yet" in html
    kept = dict(re.findall(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">', html))
    assert kept == {**CHOSEN, "lang": "en"}  # only the answers (and the language) are carried
    assert opened.status_code == 503 and "cannot be shown just now" in opened.content.decode()
    assert not Response.objects.exists()

    resent = client.post(f"/f/{token}/", kept)  # the page's "Send my answers" button
    assert resent.status_code == 302
    assert Response.objects.get().answers.count() == 12


def test_the_thank_you_page_still_thanks_the_patient_when_the_database_fails_after_storing(
    client, token, monkeypatch
):
    stored = client.post(f"/f/{token}/", CHOSEN)
    assert stored.status_code == 302
    done = stored["Location"]

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(views, "invitation_for_token", database_down)
    thanks = client.get(done)  # the redirect's address carries the signed mark of a stored form
    assert thanks.status_code == 200 and "Your answers have been received" in thanks.content.decode()
    # Without the mark (or with a forged one) nothing says the answers are in: the calm 503.
    other_token = token[:-1] + ("B" if token.endswith("A") else "A")  # another link's token
    for address in (f"/f/{token}/done/", done[:-3] + "xyz", done.replace(token, other_token)):
        page = client.get(address)
        assert page.status_code == 503, address
        assert "Your answers have been received" not in page.content.decode()
    assert Response.objects.count() == 1
