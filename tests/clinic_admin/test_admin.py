"""The clinic admin area: who may use it, staff, patients, episodes, settings."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from clinics.models import Episode, Membership, Patient, StaffInvitation
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def login(client, user):
    sign_in(client, user)
    return client


ROUTES = ["/clinic/clinic-a/staff/", "/clinic/clinic-a/patients/", "/clinic/clinic-a/settings/"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("who", "status"), [("dana", 200), ("alice", 404), ("charlie", 404), ("erin", 404), (None, 302)]
)
def test_only_the_clinics_own_admins_reach_its_admin_pages(
    client, request, dana, alice, erin, route, who, status
):
    if who:
        login(client, request.getfixturevalue(who))
    assert client.get(route).status_code == status


@pytest.mark.parametrize("who", ["alice", "erin"])
def test_outsiders_change_nothing(client, request, dana, alice, bob, erin, patient, who):
    membership = Membership.objects.get(user=bob)
    login(client, request.getfixturevalue(who))
    client.post(f"/clinic/clinic-a/staff/{membership.code}/role/", {"role": "admin"})
    client.post(f"/clinic/clinic-a/staff/{membership.code}/deactivate/")
    client.post("/clinic/clinic-a/settings/", {"name": "Hacked"})
    client.post(f"/clinic/clinic-a/patients/{patient.code}/", {"form": "discharge", "on": "2026-11-01"})
    membership.refresh_from_db()
    patient.refresh_from_db()
    assert (membership.role, membership.is_active, patient.is_active) == ("therapist", True, True)
    assert Patient.objects.get(pk=patient.pk).clinic.name == "Clinic A"


def test_an_admin_invites_a_therapist_who_joins_with_a_password(client, dana, clinic_a):
    login(client, dana)
    page = client.post(
        "/clinic/clinic-a/staff/", {"email": "new@a.test", "name": "Nora New", "role": "therapist"}
    )
    assert page.status_code == 200
    link = page.context["new_link"]
    assert link in mail.outbox[-1].body and "Clinic A" in mail.outbox[-1].subject
    other = Client()
    weak = other.post(link, {"password": "12345", "password_again": "12345"})
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    chosen = other.post(
        link,
        {
            "name": "Nora New",
            "password": "a-long-and-good-passphrase",
            "password_again": "a-long-and-good-passphrase",
        },
    )
    path = link.split("testserver", 1)[1]
    # Then the normal sign-in, back to the invitation, which a button accepts (tests/attacks/test_join.py).
    assert chosen["Location"] == f"/accounts/login/?next={path}"
    signed = other.post(chosen["Location"], {"login": "new@a.test", "password": "a-long-and-good-passphrase"})
    assert signed["Location"] == path
    joined = other.post(link, {"action": "accept"})
    assert joined["Location"] == "/"
    nora = User.objects.get(email="new@a.test")
    assert Membership.objects.get(user=nora, clinic=clinic_a).role == "therapist"
    assert Client().get(link).status_code == 410  # works once


def test_an_expired_invitation_is_refused(client, dana):
    login(client, dana)
    link = client.post("/clinic/clinic-a/staff/", {"email": "late@a.test", "role": "therapist"}).context[
        "new_link"
    ]
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        page = Client().get(link)
    assert page.status_code == 410 and "expired" in page.content.decode()
    assert not User.objects.filter(email="late@a.test").exists()


def test_the_last_admin_cannot_lose_the_role(client, dana, alice):
    login(client, dana)
    own = Membership.objects.get(user=dana)
    client.post(f"/clinic/clinic-a/staff/{own.code}/role/", {"role": "therapist"})
    own.refresh_from_db()
    assert own.role == "admin"


def test_deactivation_waits_for_patients_to_be_transferred(client, dana, alice, bob, patient, episode):
    login(client, dana)
    membership = Membership.objects.get(user=alice)
    page = client.post(f"/clinic/clinic-a/staff/{membership.code}/deactivate/", follow=True)
    assert "Transfer them to another therapist first" in page.content.decode()
    membership.refresh_from_db()
    assert membership.is_active
    client.post(
        f"/clinic/clinic-a/patients/{patient.code}/",
        {"form": "transfer", "therapist": bob.pk, "on": "2026-10-01"},
    )
    client.post(f"/clinic/clinic-a/staff/{membership.code}/deactivate/")
    membership.refresh_from_db()
    assert not membership.is_active


def test_deactivation_ends_the_therapists_sessions_at_once(dana, bob):
    bobs_browser = login(Client(), bob)
    assert bobs_browser.get("/").status_code == 200
    admin = login(Client(), dana)
    admin.post(f"/clinic/clinic-a/staff/{Membership.objects.get(user=bob).code}/deactivate/")
    assert bobs_browser.get("/").status_code == 302


def test_a_transfer_keeps_the_history_in_the_earlier_episode(
    client, dana, alice, bob, patient, episode, session
):
    login(client, dana)
    client.post(
        f"/clinic/clinic-a/patients/{patient.code}/",
        {"form": "transfer", "therapist": bob.pk, "on": "2026-10-01"},
    )
    patient.refresh_from_db()
    episodes = list(patient.episodes.order_by("started_on"))
    assert patient.therapist == bob
    assert [(e.therapist, e.ended_on) for e in episodes] == [(alice, date(2026, 10, 1)), (bob, None)]
    assert episodes[0].sessions.get() == session


def test_an_admin_adds_a_patient_with_an_episode(client, dana, alice, clinic_a):
    login(client, dana)
    response = client.post(
        "/clinic/clinic-a/patients/",
        {
            "label": "K.L.",
            "external_id": "HR-9",
            "language": "de",
            "therapist": alice.pk,
            "treatment": "cbt",
            "started_on": "2026-11-02",
            "contact_email": "",
            "contact_phone": "",
        },
    )
    patient = Patient.objects.get(label="K.L.")
    assert response.status_code == 302
    assert (patient.therapist, patient.language, patient.clinic) == (alice, "de", clinic_a)
    assert patient.episodes.get().treatment == "cbt"


def test_a_duplicate_label_is_refused_with_a_message(client, dana, alice, patient):
    login(client, dana)
    page = client.post(
        "/clinic/clinic-a/patients/",
        {
            "label": "P.A.",
            "language": "en",
            "therapist": alice.pk,
            "treatment": "cbt",
            "started_on": "2026-11-02",
        },
    )
    assert page.status_code == 400
    assert Patient.objects.filter(label="P.A.").count() == 1


def test_discharge_closes_the_episode_and_keeps_the_data(client, dana, patient, episode, session):
    login(client, dana)
    client.post(f"/clinic/clinic-a/patients/{patient.code}/", {"form": "discharge", "on": "2026-11-10"})
    patient.refresh_from_db()
    episode.refresh_from_db()
    assert not patient.is_active and episode.ended_on == date(2026, 11, 10)
    assert Episode.objects.get(pk=episode.pk).sessions.count() == 1


def test_settings_explain_themselves_and_refuse_bad_values(client, dana, clinic_a):
    login(client, dana)
    page = client.get("/clinic/clinic-a/settings/").content.decode()
    assert (
        "one reminder with the same link" in page and "sessions per 100 of a patient whose alliance" in page
    )
    assert "Alarms in the last 12 months" in page
    data = {
        "name": "Clinic A",
        "instrument_code": "bordin-alliance",
        "default_language": "en",
        "link_expiry_hours": 0,
        "reminder_delay_hours": 24,
        "sensitivity": "sensitive",
        "outcome_timing": "with_alliance",
        "retention_years": 10,
        "idle_timeout_minutes": 30,
    }
    assert client.post("/clinic/clinic-a/settings/", data).status_code == 400
    clinic_a.refresh_from_db()
    assert clinic_a.link_expiry_hours == 72
    client.post("/clinic/clinic-a/settings/", {**data, "link_expiry_hours": 48, "patients_see_results": "on"})
    clinic_a.refresh_from_db()
    assert (clinic_a.link_expiry_hours, clinic_a.sensitivity, clinic_a.patients_see_results) == (
        48,
        "sensitive",
        True,
    )


def test_an_admin_chooses_the_symptom_measures_and_the_crisis_text(client, dana, clinic_a):
    login(client, dana)
    page = client.get("/clinic/clinic-a/settings/").content.decode()
    assert "PHQ-9" in page and "GAD-7" in page and "emergency number" in page
    data = {
        "name": "Clinic A",
        "instrument_code": "bordin-alliance",
        "default_language": "en",
        "link_expiry_hours": 72,
        "reminder_delay_hours": 24,
        "sensitivity": "standard",
        "outcome_measures": ["phq9", "gad7"],
        "outcome_timing": "before_session",
        "crisis_text": "Call our duty line 0123 456 789 (9-17), out of hours 112.",
        "retention_years": 10,
        "idle_timeout_minutes": 30,
    }
    assert (
        client.post("/clinic/clinic-a/settings/", {**data, "outcome_measures": ["core10"]}).status_code == 400
    )
    clinic_a.refresh_from_db()
    assert clinic_a.outcome_measures == []
    client.post("/clinic/clinic-a/settings/", data)
    clinic_a.refresh_from_db()
    assert clinic_a.outcome_measures == ["phq9", "gad7"] and clinic_a.outcome_timing == "before_session"
    assert clinic_a.crisis_message.startswith("Call our duty line")


def test_the_invitation_table_only_lists_this_clinics_invitations(client, dana, erin, clinic_b):
    login(Client(), erin).post("/clinic/clinic-b/staff/", {"email": "b-only@b.test", "role": "therapist"})
    login(client, dana)
    assert "b-only@b.test" not in client.get("/clinic/clinic-a/staff/").content.decode()
    assert StaffInvitation.objects.filter(clinic=clinic_b).count() == 1


def test_the_report_counts_sessions_forms_and_flags_of_this_clinic_only(
    client, dana, alice, bob, charlie, clinic_a, clinic_b
):
    from monitoring.models import Flag
    from tests.care.test_dashboards import import_cohort

    import_cohort(clinic_a, alice, 2, 12, scenarios={"rupture_unrepaired": 1}, prefix="a")
    import_cohort(clinic_a, bob, 3, 10, seed=8, scenarios={"stable": 1}, prefix="b")
    import_cohort(clinic_b, charlie, 4, 10, seed=9, scenarios={"rupture_unrepaired": 1}, prefix="c")
    login(client, dana)
    page = client.get("/clinic/clinic-a/report/?start=2026-01-01&end=2026-12-31")
    report = page.context["report"]
    assert page.status_code == 200
    assert (report.totals.patients, report.totals.held, report.totals.completed) == (5, 2 * 12 + 3 * 10, 54)
    expected_unrepaired = Flag.objects.filter(
        episode__patient__clinic=clinic_a, scale="total", kind="unrepaired"
    ).count()
    assert report.totals.unrepaired == expected_unrepaired >= 1
    assert [t.therapist for t in report.therapists] == [alice, bob]
    assert all(t.small for t in report.therapists)
    assert "small numbers" in page.content.decode()
    only_bob = client.get(
        f"/clinic/clinic-a/report/?start=2026-01-01&end=2026-12-31&therapist={bob.pk}"
    ).context["report"]
    assert (only_bob.totals.patients, only_bob.totals.unrepaired) == (3, 0)


def test_the_report_refuses_a_backwards_period(client, dana):
    login(client, dana)
    page = client.get("/clinic/clinic-a/report/?start=2026-12-01&end=2026-01-01")
    assert page.status_code == 400
    assert "The period must start before it ends." in page.content.decode()


@pytest.mark.parametrize(("who", "status"), [("dana", 200), ("alice", 404), ("erin", 404)])
def test_only_admins_see_the_report(client, request, dana, alice, erin, who, status):
    login(client, request.getfixturevalue(who))
    assert client.get("/clinic/clinic-a/report/").status_code == status


def test_staff_are_signed_out_after_the_clinics_idle_timeout(client, alice, clinic_a):
    clinic_a.idle_timeout_minutes = 10
    clinic_a.save()
    login(client, alice)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert client.get("/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=9), tick=False):
        assert client.get("/").status_code == 200  # activity keeps the session alive
    with time_machine.travel(start + timedelta(minutes=18), tick=False):
        assert client.get("/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(("who", "status"), [("dana", 200), ("alice", 404), ("erin", 404)])
def test_only_admins_reach_the_exports_page(client, request, dana, alice, erin, who, status):
    login(client, request.getfixturevalue(who))
    assert client.get("/clinic/clinic-a/exports/").status_code == status


def test_an_admin_exports_and_downloads_and_outsiders_cannot(
    client, dana, erin, alice, patient, episode, session, instrument, django_capture_on_commit_callbacks
):
    from auditlog.models import LogEntry

    from monitoring.collection.responses import response_create
    from monitoring.models import ExportJob

    response_create(
        session=session, instrument=instrument, answers={n: 4 for n in range(1, 13)}, source="link"
    )
    login(client, dana)
    with django_capture_on_commit_callbacks(execute=True):  # the job runs inline (immediate backend)
        client.post("/clinic/clinic-a/exports/", {"report": "item_answers", "format": "csv"})
    job = ExportJob.objects.get()
    assert job.status == "done"
    download = client.get(f"/exports/{job.code}/download/")
    body = b"".join(download.streaming_content).decode()
    assert download.status_code == 200 and "P.A.,EXT-1,1,2026-09-01,alliance,1,4" in body
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=dana).count() >= 2
    for outsider in (erin, alice):
        assert login(Client(), outsider).get(f"/exports/{job.code}/download/").status_code == 404


@pytest.mark.parametrize(("who", "status"), [("alice", 200), ("dana", 200), ("bob", 404), ("erin", 404)])
def test_the_patients_pdf_report_follows_the_patient_access_rules(
    client, request, alice, dana, bob, erin, patient, episode, session, instrument, who, status
):
    from monitoring.collection.responses import response_create

    response_create(
        session=session, instrument=instrument, answers={n: 4 for n in range(1, 13)}, source="link"
    )
    login(client, request.getfixturevalue(who))
    response = client.get(f"/patients/{patient.code}/report.pdf")
    assert response.status_code == status
    if status == 200:
        assert response.content.startswith(b"%PDF") and response["Cache-Control"] == "no-store"


def test_discharged_patients_past_retention_are_pointed_out(client, dana, alice, clinic_a, patient, episode):
    from clinics.services import patient_discharge

    clinic_a.retention_years = 2
    clinic_a.save()
    episode.started_on = date(2020, 1, 1)
    episode.save()
    patient_discharge(patient=patient, on=date(2023, 1, 10))
    login(client, dana)
    page = client.get("/clinic/clinic-a/patients/").content.decode()
    assert "1 discharged patient has passed the clinic" in page and "retention period of 2 years" in page
    clinic_a.retention_years = 10
    clinic_a.save()
    assert "retention period" not in client.get("/clinic/clinic-a/patients/").content.decode()


def test_the_retention_cutoff_survives_a_leap_day(clinic_a):
    from monitoring.clinic_admin.selectors import patients_past_retention

    assert patients_past_retention(clinic=clinic_a, today=date(2028, 2, 29)).count() == 0
