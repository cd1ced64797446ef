"""The clinic admin's export form offers what the API and the command offer: the FHIR bundle type
and a study key for pseudonymised exports; the key is never echoed back nor stored in plain text."""

from __future__ import annotations

import json

import pytest
from auditlog.models import LogEntry

from monitoring.collection.responses import response_create
from monitoring.exports import pseudonym
from monitoring.models import ExportJob
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

STUDY_KEY = "the study's own key, 2026"
PAGE = "/clinic/clinic-a/exports/"


@pytest.fixture
def answered(session, instrument):
    return response_create(
        session=session, instrument=instrument, answers={n: 4 for n in range(1, 13)}, source="link"
    )


def test_the_form_offers_the_bundle_type_and_a_study_key_that_is_never_echoed(client, dana):
    sign_in(client, dana)
    page = client.get(PAGE).content.decode()
    assert 'name="fhir_bundle"' in page and 'value="transaction"' in page
    assert 'type="password" name="study_key"' in page
    refused = client.post(
        PAGE, {"report": "item_answers", "format": "csv", "study_key": "short but secret"[:15]}
    )
    assert refused.status_code == 400
    assert "at least 16 characters" in refused.content.decode()
    assert "short but secre" not in refused.content.decode()  # not sent back, not even on an error


def test_an_admin_exports_with_a_study_key_which_only_its_fingerprint_outlives(
    client, dana, patient, answered, django_capture_on_commit_callbacks
):
    sign_in(client, dana)
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(PAGE, {"report": "item_answers", "format": "csv", "study_key": STUDY_KEY})
    assert sent.status_code == 302
    job = ExportJob.objects.get()
    assert job.status == "done", job.error
    assert job.filters["pseudonymise"] is True and job.filters["study_key"] is True
    assert "sealed_key" not in job.filters and STUDY_KEY not in json.dumps(job.filters)
    assert not any(STUDY_KEY in json.dumps(e.additional_data) for e in LogEntry.objects.all())
    body = b"".join(client.get(f"/exports/{job.code}/download/").streaming_content).decode()
    code = pseudonym(clinic=patient.clinic, kind="patient", value=patient.code, key=STUDY_KEY)
    assert f"\r\n{code},,1," in body
    listed = client.get(PAGE).content.decode()
    assert "with study key <code" in listed and job.filters["key_fingerprint"] in listed


def test_an_admin_chooses_a_transaction_bundle_and_only_for_fhir(
    client, dana, answered, django_capture_on_commit_callbacks
):
    sign_in(client, dana)
    wrong = client.post(PAGE, {"report": "flags", "format": "csv", "fhir_bundle": "transaction"})
    assert wrong.status_code == 400 and "Only a FHIR export has a bundle type." in wrong.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PAGE, {"report": "item_answers", "format": "fhir", "fhir_bundle": "transaction"})
    job = ExportJob.objects.get()
    assert job.status == "done" and job.filters["fhir_bundle"] == "transaction"
    bundle = json.loads(b"".join(client.get(f"/exports/{job.code}/download/").streaming_content))
    assert bundle["type"] == "transaction"
