"""Session page, staff entry, therapist rating and tablet mode, with their access rules."""

from __future__ import annotations

from datetime import date

import pytest

from monitoring.models import Invitation, Response
from tests.auth import sign_in

pytestmark = pytest.mark.django_db
FULL = {f"item_{n}": "3" for n in range(1, 13)}


def login(client, user):
    sign_in(client, user)
    return client


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("dana", 200), ("bob", 404), ("charlie", 404), ("erin", 404), (None, 302)],
)
def test_who_may_open_a_session_page(client, request, session, who, status):
    if who:
        login(client, request.getfixturevalue(who))
    assert client.get(f"/sessions/{session.code}/").status_code == status
    assert client.get(f"/patients/{session.episode.patient.code}/").status_code == status


@pytest.mark.parametrize("who", ["bob", "charlie", "erin"])
def test_outsiders_cannot_act_on_a_session(client, request, session, who):
    login(client, request.getfixturevalue(who))
    for action in ("held", "link"):
        assert client.post(f"/sessions/{session.code}/{action}/").status_code == 404
    assert client.post(f"/sessions/{session.code}/enter/patient/", FULL).status_code == 404
    assert client.post(f"/kiosk/{session.code}/").status_code == 404
    assert not Invitation.objects.exists() and not Response.objects.exists()


def test_the_session_page_shows_a_qr_code_and_the_link(client, alice, session):
    login(client, alice)
    client.post(f"/sessions/{session.code}/link/")
    html = client.get(f"/sessions/{session.code}/").content.decode()
    assert "<svg" in html and "/f/" in html and "Copy link" in html


def test_marking_a_scheduled_session_held_creates_the_link(client, alice, episode):
    from clinics.models import Session

    scheduled = Session.objects.create(episode=episode, number=2, date=episode.started_on)
    login(client, alice)
    client.post(f"/sessions/{scheduled.code}/held/")
    scheduled.refresh_from_db()
    assert scheduled.status == "held"
    assert Invitation.objects.filter(session=scheduled, revoked_at=None).count() == 1


def test_staff_entry_of_a_paper_form_records_who_entered_it(client, alice, session):
    login(client, alice)
    client.post(f"/sessions/{session.code}/link/")
    response = client.post(f"/sessions/{session.code}/enter/patient/", FULL)
    assert response.status_code == 302
    stored = Response.objects.get(session=session)
    assert (stored.source, stored.entered_by, stored.rater) == ("staff", alice, "patient")
    assert not Invitation.objects.filter(session=session, revoked_at=None, used_at=None).exists()


def test_staff_entry_with_a_missing_answer_saves_nothing(client, alice, session):
    login(client, alice)
    data = dict(FULL)
    del data["item_12"]
    page = client.post(f"/sessions/{session.code}/enter/patient/", data)
    assert page.status_code == 400
    assert "Please choose an answer for this statement." in page.content.decode()
    assert not Response.objects.exists()


def test_the_therapist_rates_only_when_the_clinic_allows(client, alice, dana, session, clinic_a):
    login(client, alice)
    client.post(f"/sessions/{session.code}/enter/therapist/", FULL)
    assert not Response.objects.exists()
    clinic_a.therapist_rating_enabled = True
    clinic_a.save()
    page = client.get(f"/sessions/{session.code}/enter/therapist/")
    assert "The patient trusts me" in page.content.decode()
    client.post(f"/sessions/{session.code}/enter/therapist/", FULL)
    assert Response.objects.get().rater == "therapist"
    client.logout()
    login(client, dana)  # an admin is not the patient's therapist
    assert client.get(f"/sessions/{session.code}/enter/therapist/").status_code == 302


def test_tablet_mode_signs_staff_out_and_ends_on_a_neutral_screen(client, alice, session, patient):
    session.date = date.today()
    session.save()
    login(client, alice)
    assert patient.label in client.get("/kiosk/").content.decode()
    form_url = client.post(f"/kiosk/{session.code}/")["Location"]
    assert form_url.startswith("/f/")
    assert client.get("/").status_code == 302  # the patient cannot reach staff pages
    done = client.get(client.post(form_url, FULL)["Location"])
    html = done.content.decode()
    assert "Please hand the tablet back to the staff" in html
    assert patient.label not in html
    assert Response.objects.get().source == "tablet"
    assert client.get(f"/sessions/{session.code}/").status_code == 302


def test_a_session_can_be_added_from_the_patient_page(client, alice, episode, session):
    login(client, alice)
    response = client.post(f"/patients/{episode.patient.code}/sessions/", {"date": "2026-09-08"})
    assert episode.sessions.count() == 2
    assert response["Location"] == f"/sessions/{episode.sessions.get(number=2).code}/"
    client.post(f"/patients/{episode.patient.code}/sessions/", {"date": "not a date"})
    assert episode.sessions.count() == 2


def test_staff_entry_is_in_the_audit_trail_with_who_did_it(client, alice, session):
    from auditlog.models import LogEntry

    login(client, alice)
    client.post(f"/sessions/{session.code}/enter/patient/", FULL)
    entry = LogEntry.objects.get_for_object(Response.objects.get()).get()
    assert entry.actor == alice
    assert entry.action == LogEntry.Action.CREATE
    assert "staff" in str(entry.changes)


@pytest.mark.parametrize("tampered", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_tampered_link_code_gets_a_message_not_an_error(client, alice, session, tampered):
    login(client, alice)
    client.post(f"/sessions/{session.code}/link/")
    page = client.post(f"/sessions/{session.code}/revoke/", {"invitation": tampered}, follow=True)
    assert page.status_code == 200
    assert "That link no longer exists" in page.content.decode()
    assert Invitation.objects.filter(session=session, revoked_at=None).count() == 1


def test_a_user_creates_sees_once_and_revokes_an_api_token(client, alice, clinic_a):
    from monitoring.models import ApiToken

    login(client, alice)
    page = client.post(
        "/account/api-tokens/", {"name": "Health record", "clinic": str(clinic_a.code), "days": "30"}
    )
    token = page.context["new_token"]
    assert token.startswith("bdn_") and token in page.content.decode()
    assert token not in client.get("/account/api-tokens/").content.decode()  # shown once
    row = ApiToken.objects.get()
    assert row.token_hash != token and row.expires_at is not None
    api = client.get("/api/v1/me/", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    client.post("/account/api-tokens/", {"action": "revoke", "token": str(row.code)})
    assert client.get("/api/v1/me/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_token_only_for_ones_own_clinic(client, alice, clinic_b):
    from monitoring.models import ApiToken

    login(client, alice)
    client.post("/account/api-tokens/", {"name": "x", "clinic": str(clinic_b.code)})
    assert not ApiToken.objects.exists()


# --- Symptom measures and safety on the staff pages ------------------------------------------


@pytest.fixture
def measuring(clinic_a):
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.save()
    return clinic_a


def test_staff_enter_a_paper_phq9_from_the_session_page(client, measuring, session, alice):
    login(client, alice)
    page = client.get(f"/sessions/{session.code}/").content.decode()
    assert "Symptom questions" in page and "enter the paper PHQ-9" in page
    url = f"/sessions/{session.code}/enter/patient/?measure=phq9"
    form = client.get(url).content.decode()
    assert "Enter the paper PHQ-9" in form and 'name="phq9_9"' in form and 'name="item_1"' not in form
    missing = client.post(url, {f"phq9_{n}": "1" for n in range(1, 9)})
    assert missing.status_code == 400 and not Response.objects.exists()
    client.post(url, {f"phq9_{n}": "1" for n in range(1, 10)})
    stored = Response.objects.get()
    assert (stored.measure, stored.source, stored.entered_by) == ("phq9", "staff", alice)
    assert (
        'PHQ-9: <span class="pill ok">Received' in client.get(f"/sessions/{session.code}/").content.decode()
    )


def test_a_measure_the_clinic_does_not_ask_cannot_be_entered(client, clinic_a, session, alice):
    login(client, alice)
    response = client.get(f"/sessions/{session.code}/enter/patient/?measure=phq9")
    assert response.status_code == 302
    assert (
        client.post(f"/sessions/{session.code}/enter/patient/?measure=gad7", {"gad7_1": "1"}).status_code
        == 302
    )
    assert not Response.objects.exists()


def test_a_clinic_asking_before_the_session_makes_a_symptom_link(client, measuring, episode, alice):
    measuring.outcome_timing = "before_session"
    measuring.save()
    upcoming = episode.sessions.create(number=2, date=date(2026, 9, 8))
    login(client, alice)
    assert "Create the symptom questions" in client.get(f"/sessions/{upcoming.code}/").content.decode()
    client.post(f"/sessions/{upcoming.code}/symptom-link/")
    link = Invitation.objects.get()
    assert (link.part, link.measures) == ("before", ["phq9", "gad7"])
    assert (
        "The symptom questions before this session have a link"
        in client.get(f"/sessions/{upcoming.code}/").content.decode()
    )


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 302), ("dana", 302), ("bob", 404), ("charlie", 404), ("erin", 404)]
)
def test_who_may_record_a_safety_follow_up(client, request, measuring, session, alice, who, status):
    from monitoring.collection.responses import response_enter
    from monitoring.models import SafetyAlert

    response_enter(
        session=session,
        rater="patient",
        answers={n: 0 for n in range(1, 9)} | {9: 2},
        user=alice,
        measure="phq9",
    )
    alert = SafetyAlert.objects.get()
    login(client, request.getfixturevalue(who))
    answer = client.post(
        f"/safety/{alert.code}/follow-up/", {"follow_up": "seen", "note": "Discussed today."}
    )
    assert answer.status_code == status
    alert.refresh_from_db()
    assert (alert.followed_up_at is not None) == (status == 302)


def test_the_tablet_hands_over_the_symptom_questions_before_the_session(client, measuring, episode, alice):
    measuring.outcome_timing = "before_session"
    measuring.save()
    upcoming = episode.sessions.create(number=2, date=date.today())
    login(client, alice)
    assert "Symptom questions (before the session)" in client.get("/kiosk/").content.decode()
    handed = client.post(f"/kiosk/{upcoming.code}/", {"part": "before"})
    assert handed.status_code == 302 and handed.url.startswith("/f/")
    link = Invitation.objects.get()
    assert (link.part, link.channel, link.measures) == ("before", "tablet", ["phq9", "gad7"])
    upcoming.refresh_from_db()
    assert upcoming.status == "scheduled"  # answering before the session does not mark it held
    form = client.get(handed.url).content.decode()
    assert "Before your session" in form and 'name="item_1"' not in form
