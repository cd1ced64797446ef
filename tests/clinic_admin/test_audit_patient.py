"""The audit trail names the patient and answers "who looked at DEMO-0019?"."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from clinics.models import Patient
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(clinic_a, alice) -> Patient:
    return Patient.objects.create(clinic=clinic_a, label="Z.Z.", external_id="DEMO-0020", therapist=alice)


def test_the_audit_trail_names_the_patient_and_filters_by_one(
    client: Client, alice, bob, dana, patient, other, caplog
):
    patient.external_id = "DEMO-0019"
    patient.save()
    sign_in(client, alice)
    client.get(f"/patients/{patient.code}/")
    sign_in(client, bob)
    client.get(f"/patients/{other.code}/")
    sign_in(client, dana)
    with caplog.at_level(logging.DEBUG):
        page = client.get("/clinic/clinic-a/audit/?patient=DEMO-0019")
    assert page.status_code == 200
    rows = [(entry.actor_email, name) for entry, _, name in page.context["rows"]]
    assert (alice.email, f"{patient.label} (DEMO-0019)") in rows
    assert all(email != bob.email for email, _ in rows), "bob read another patient"
    assert all(name == f"{patient.label} (DEMO-0019)" for _, name in rows)
    # By label too, and the unfiltered page names patients in a column of their own.
    by_label = client.get(f"/clinic/clinic-a/audit/?patient={patient.label}")
    assert alice.email in {e.actor_email for e, _, _ in by_label.context["rows"]}
    everything = client.get("/clinic/clinic-a/audit/").content.decode()
    assert '<th scope="col">Patient</th>' in everything and "DEMO-0020" in everything
    assert "DEMO-0019" not in caplog.text and patient.label not in caplog.text


def test_the_audit_csv_applies_the_patient_filter(client: Client, alice, bob, dana, patient, other):
    sign_in(client, alice)
    client.get(f"/patients/{patient.code}/")
    sign_in(client, bob)
    client.get(f"/patients/{other.code}/")
    sign_in(client, dana)
    body = b"".join(
        client.get(f"/clinic/clinic-a/audit.csv?patient={patient.label}").streaming_content
    ).decode()
    header, *lines = body.strip().splitlines()
    assert "patient" in header.split(",")
    assert lines and any(alice.email in line for line in lines)
    assert not any(bob.email in line for line in lines)


def test_a_therapist_cannot_read_the_trail(client: Client, alice, patient):
    sign_in(client, alice)
    assert client.get(f"/clinic/clinic-a/audit/?patient={patient.label}").status_code in (403, 404)
