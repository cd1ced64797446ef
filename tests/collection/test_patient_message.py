"""The optional message at the end of the patient form (issue 16, item 4): "Anything you would
like your therapist to know?". Stored once with the answers, never lost silently, shown to the
therapist beside its session with each read audited, in no export, erased with the patient."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from django.db import OperationalError

from clinics.errors import ApplicationError
from monitoring.clinic_admin.services import patient_erase
from monitoring.collection import views
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import submission_create
from monitoring.models import Invitation, PatientMessage, Response
from tests.auth import sign_in

pytestmark = pytest.mark.django_db
FULL = {f"item_{n}": "4" for n in range(1, 13)}
ANSWERS = dict.fromkeys(range(1, 13), 4)
WORDS = "I found it hard to say so today, but the homework felt like too much.\nCan we talk about it?"


@pytest.fixture
def made(session, alice) -> tuple[Invitation, str]:
    return invitation_create(session=session, created_by=alice)


@pytest.fixture
def token(made) -> str:
    return made[1]


# --- The service ---------------------------------------------------------------------------------


def test_a_message_is_stored_with_the_answers_once(made, session):
    invitation, _ = made
    submission_create(invitation=invitation, answers=ANSWERS, message=f"  {WORDS}  ")
    message = PatientMessage.objects.get()
    assert (message.session, message.invitation, message.text) == (session, invitation, WORDS)
    with pytest.raises(ApplicationError) as used:
        submission_create(invitation=invitation, answers=ANSWERS, message="Something else")
    assert used.value.code == "used"
    assert PatientMessage.objects.count() == 1 and Response.objects.count() == 1


def test_an_empty_box_stores_no_message(made):
    submission_create(invitation=made[0], answers=ANSWERS, message=" \n ")
    assert Response.objects.count() == 1 and not PatientMessage.objects.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [("x" * (PatientMessage.MAX_LENGTH + 1), "at most 1000 fit"), ("Hi\x1b[2J", "control character")],
)
def test_a_message_that_cannot_be_stored_stores_nothing_and_keeps_the_link(made, text, words):
    invitation, _ = made
    with pytest.raises(ApplicationError) as refused:
        submission_create(invitation=invitation, answers=ANSWERS, message=text)
    assert words in refused.value.message
    assert not Response.objects.exists() and not PatientMessage.objects.exists()
    invitation.refresh_from_db()
    assert invitation.used_at is None  # the patient can send again


# --- The form --------------------------------------------------------------------------------------


def test_the_form_ends_with_the_optional_box_and_says_how_long_it_may_be(client, token):
    html = client.get(f"/f/{token}/").content.decode()
    assert 'for="message">Anything you would like your therapist to know?' in html
    assert '<textarea id="message" name="message" rows="4" maxlength="1000"' in html
    assert "At most 1000 characters." in html and "not straight away" in html
    assert html.index('name="item_12"') < html.index('id="message"') < html.index("Send my answers")


def test_the_box_is_in_german_where_the_form_is(client, token, patient):
    patient.language = "de"
    patient.save()
    html = client.get(f"/f/{token}/").content.decode()
    assert "Möchten Sie Ihrer Therapeutin oder Ihrem Therapeuten noch etwas mitteilen?" in html
    assert "(freiwillig)" in html and "Höchstens 1000 Zeichen." in html


def test_a_message_sent_with_the_form_is_stored(client, token, session):
    sent = client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    assert sent.status_code == 302
    assert PatientMessage.objects.get(session=session).text == WORDS


def test_a_missing_answer_keeps_the_message_typed(client, token):
    data = {**FULL, "message": "Keep <this>"}
    del data["item_5"]
    html = client.post(f"/f/{token}/", data).content.decode()
    assert ">Keep &lt;this&gt;</textarea>" in html
    assert not PatientMessage.objects.exists()


def test_a_message_too_long_is_refused_clearly_with_the_answers_kept(client, token, patient):
    patient.language = "de"
    patient.save()
    page = client.post(f"/f/{token}/", {**FULL, "message": "x" * 1001})
    html = page.content.decode()
    assert page.status_code == 400
    assert "Bitte prüfen Sie Ihre Nachricht" in html
    assert "Ihre Nachricht hat 1001 Zeichen; höchstens 1000 passen." in html
    assert 'aria-invalid="true"' in html and 'href="#message"' in html
    assert html.count("checked") == 12
    assert not Response.objects.exists() and not PatientMessage.objects.exists()


def test_a_double_click_with_the_same_message_thanks_and_stores_it_once(client, token):
    client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    again = client.post(f"/f/{token}/", {**FULL, "message": WORDS + " "})
    assert again.status_code == 200 and "Your answers have been received" in again.content.decode()
    assert PatientMessage.objects.count() == 1


@pytest.mark.parametrize("first", ["", "The first words"])
def test_a_second_tab_with_another_message_is_told_it_was_not_stored(client, token, first):
    client.post(f"/f/{token}/", {**FULL, "message": first})
    second = client.post(f"/f/{token}/", {**FULL, "message": "Second thoughts"})
    assert second.status_code == 410
    assert "were not saved" in second.content.decode()
    assert list(PatientMessage.objects.values_list("text", flat=True)) == ([first] if first else [])


def test_the_database_failing_keeps_the_message_for_a_resend(client, token, monkeypatch):
    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(PatientMessage.objects, "create", database_gone)
        page = client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    assert page.status_code == 503 and f">{WORDS}</textarea>" in page.content.decode()
    assert not Response.objects.exists()  # the answers and the claim were rolled back with it

    with monkeypatch.context() as patched:
        patched.setattr(views, "invitation_for_token", database_gone)
        down = client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    kept = dict(
        re.findall(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">', down.content.decode())
    )
    assert kept["message"] == WORDS
    assert client.post(f"/f/{token}/", kept).status_code == 302
    assert PatientMessage.objects.get().text == WORDS


# --- The therapist's pages ---------------------------------------------------------------------


def _reads(what: str = "patient's message") -> list[LogEntry]:
    return [
        e
        for e in LogEntry.objects.filter(action=LogEntry.Action.ACCESS).order_by("pk")
        if (e.additional_data or {}).get("what") == what
    ]


def test_the_therapist_sees_the_message_beside_its_session_and_the_read_is_audited(
    client, alice, patient, token, session
):
    client.post(f"/f/{token}/", {**FULL, "message": "Line one\nline <two>"})
    sign_in(client, alice)
    page = client.get(f"/patients/{patient.code}/").content.decode()
    row = page[page.index('<tr class="message-row">') :]
    assert "with the form of session 1" in row and "<q>Line one<br>line &lt;two&gt;</q>" in row
    entry = _reads()[-1]
    assert entry.actor == alice and entry.additional_data["sessions"] == [1]
    assert entry.additional_data["patient"] == str(patient.code)
    assert entry.additional_data["path"] == f"/patients/{patient.code}/"
    assert "Line one" not in str(entry.changes_text) + str(entry.additional_data)

    detail = client.get(f"/sessions/{session.code}/").content.decode()
    assert 'id="patient-message-heading">Message from the patient' in detail
    assert "Line one<br>line &lt;two&gt;" in detail
    assert _reads()[-1].additional_data["path"] == f"/sessions/{session.code}/"
    assert len(_reads()) == 2


def test_no_message_no_read_entry(client, alice, patient, session):
    sign_in(client, alice)
    page = client.get(f"/patients/{patient.code}/").content.decode()
    assert "message-row" not in page and not _reads()


@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_other_therapists_and_clinics_cannot_read_it(client, request, patient, token, session, who):
    client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    sign_in(client, request.getfixturevalue(who))
    assert client.get(f"/patients/{patient.code}/").status_code == 404
    assert client.get(f"/sessions/{session.code}/").status_code == 404
    assert not _reads()


def test_the_clinic_admin_reads_it_audited(client, dana, patient, token):
    client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    sign_in(client, dana)
    assert "homework felt like too much" in client.get(f"/patients/{patient.code}/").content.decode()
    assert _reads()[-1].actor == dana


def test_the_trail_records_that_a_message_was_written_but_not_its_text(client, token):
    client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    assert not any("homework" in str(e.changes) + str(e.changes_text) for e in LogEntry.objects.all())


def test_erasing_the_patient_erases_the_message(dana, patient, token, client):
    client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    patient_erase(patient=patient, by=dana, confirm=patient.label)
    assert not PatientMessage.objects.exists()


def test_a_supervisor_sees_the_page_but_not_the_message(client, sam, patient, token, session):
    """The patient wrote to their therapist: a supervisor who may look at the patient does not
    read it (and nothing is logged as read)."""
    client.post(f"/f/{token}/", {**FULL, "message": WORDS})
    sign_in(client, sam)
    page = client.get(f"/patients/{patient.code}/")
    assert page.status_code == 200 and "homework felt like too much" not in page.content.decode()
    detail = client.get(f"/sessions/{session.code}/")
    assert detail.status_code == 200 and "homework felt like too much" not in detail.content.decode()
    assert not _reads()
