"""The export options an integrator and a researcher need, through the API (docs/api.md,
docs/exports.md): the FHIR bundle type and the study key of a pseudonymised export. The study key
is never stored in plain text: the job keeps it sealed until it has run, then only its
fingerprint, and neither the audit trail nor the idempotency record can give it back."""

from __future__ import annotations

import io
import json

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command

from monitoring.exports import ExportFilters, pseudonym
from monitoring.exports import services as export_services
from monitoring.exports import worker as export_worker
from monitoring.models import ExportJob, IdempotencyKey
from tests.api.conftest import Api, make_token

pytestmark = pytest.mark.django_db

STUDY_KEY = "wave-two study key, kept by the PI"


@pytest.fixture
def admin(dana, clinic_a) -> Api:
    return Api(make_token(dana, clinic_a))


def stored_anywhere(text: str) -> list[str]:
    """Where ``text`` appears in what the database keeps of an export: jobs, audit, idempotency."""
    places = []
    for job in ExportJob.objects.all():
        if text in json.dumps(job.filters) or text in json.dumps([job.error, job.filename, job.file_path]):
            places.append(f"job {job.code}")
    for entry in LogEntry.objects.all():
        if text in json.dumps([entry.changes, entry.additional_data, entry.changes_text], default=str):
            places.append(f"audit {entry.pk}")
    for row in IdempotencyKey.objects.all():
        if text in json.dumps([row.key_hash, row.request_hash, row.response], default=str):
            places.append(f"idempotency {row.pk}")
    return places


def test_a_study_key_gives_its_pseudonyms_and_is_kept_only_as_a_fingerprint(
    admin, world, clinic_a, django_capture_on_commit_callbacks
):
    body = {"report": "item_answers", "format": "csv", "study_key": STUDY_KEY}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = admin.post("/api/v1/exports/", body, HTTP_IDEMPOTENCY_KEY="study-wave-2")
    assert started.status_code == 202, started.json()
    job = ExportJob.objects.get(code=started.json()["code"])
    # Queued: the worker still needs the key, so the job holds it sealed, never in plain text.
    assert job.status == "queued" and job.filters["pseudonymise"] is True
    assert job.filters["study_key"] is True and len(job.filters["key_fingerprint"]) == 16
    assert job.filters["sealed_key"] and stored_anywhere(STUDY_KEY) == []
    for callback in queued:
        callback()
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert "sealed_key" not in job.filters  # dropped once the job has run
    assert job.filters["key_fingerprint"]  # which exports join stays known
    text = b"".join(admin.get(f"/api/v1/exports/{job.code}/download/").streaming_content).decode()
    expected = pseudonym(clinic=clinic_a, kind="patient", value=world.patient.code, key=STUDY_KEY)
    assert f"\r\n{expected},," in text and "P.A." not in text
    assert stored_anywhere(STUDY_KEY) == []
    audit = LogEntry.objects.filter(additional_data__job=str(job.code), additional_data__event="export").get()
    assert audit.additional_data["filters"]["key_fingerprint"] == job.filters["key_fingerprint"]
    assert "sealed_key" not in audit.additional_data["filters"]


def test_the_same_study_key_has_the_same_fingerprint_and_another_key_another(admin, world):
    def fingerprint(key: str) -> str:
        started = admin.post("/api/v1/exports/", {"report": "flags", "format": "csv", "study_key": key})
        assert started.status_code == 202
        return ExportJob.objects.get(code=started.json()["code"]).filters["key_fingerprint"]

    assert fingerprint(STUDY_KEY) == fingerprint(STUDY_KEY) != fingerprint(STUDY_KEY + "!")


def test_a_pseudonymised_export_without_a_study_key_keeps_no_key_after_it_ran(
    admin, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        started = admin.post(
            "/api/v1/exports/", {"report": "item_answers", "format": "csv", "pseudonymise": True}
        )
    job = ExportJob.objects.get(code=started.json()["code"])
    assert job.status == "done"
    assert job.filters["pseudonymise"] is True and job.filters["study_key"] is False
    assert "sealed_key" not in job.filters and job.filters["key_fingerprint"] == ""


def test_a_queued_job_that_lost_its_study_key_fails_rather_than_use_another_key(
    admin, world, django_capture_on_commit_callbacks
):
    body = {"report": "item_answers", "format": "csv", "study_key": STUDY_KEY}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        code = admin.post("/api/v1/exports/", body).json()["code"]
    job = ExportJob.objects.get(code=code)
    ExportJob.objects.filter(pk=job.pk).update(
        filters={k: v for k, v in job.filters.items() if k != "sealed_key"}
    )
    for callback in queued:
        callback()
    job.refresh_from_db()
    assert job.status == "failed" and "study key is no longer held" in job.error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"report": "item_answers", "format": "csv", "study_key": "too short"}, "study_key"),
        ({"report": "flags", "format": "csv", "fhir_bundle": "transaction"}, "fhir_bundle"),
        ({"report": "item_answers", "format": "fhir", "fhir_bundle": "batch"}, "fhir_bundle"),
    ],
)
def test_bad_export_options_are_a_400_naming_the_field(admin, world, body, field):
    answer = admin.post("/api/v1/exports/", body)
    assert answer.status_code == 400 and list(answer.json()["error"]["fields"]) == [field]
    assert not ExportJob.objects.filter(exporter=body["report"], status="queued").exists()


def test_a_transaction_bundle_is_chosen_through_the_api(admin, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        started = admin.post(
            "/api/v1/exports/", {"report": "item_answers", "format": "fhir", "fhir_bundle": "transaction"}
        )
    assert started.status_code == 202
    code = started.json()["code"]
    assert ExportJob.objects.get(code=code).filters["fhir_bundle"] == "transaction"
    bundle = json.loads(b"".join(admin.get(f"/api/v1/exports/{code}/download/").streaming_content).decode())
    assert bundle["type"] == "transaction"
    assert {e["request"]["method"] for e in bundle["entry"]} == {"POST"}


def test_the_schema_offers_both_options(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    fields = components["ExportInputRequest"]["properties"]
    bundle = fields["fhir_bundle"]
    ref = bundle.get("$ref") or bundle["allOf"][0]["$ref"]
    assert components[ref.rsplit("/", 1)[1]]["enum"] == ["collection", "transaction"]
    assert fields["study_key"]["writeOnly"] is True and fields["study_key"]["minLength"] == 16


def test_jobs_from_before_sealing_lose_their_plain_key_and_keep_a_fingerprint(world, clinic_a, dana):
    """Jobs made before keys were sealed kept them in plain text: the daily purge_exports drops
    the key from every job that has run (a study key leaves its fingerprint, a drawn key nothing),
    and a job queued across the upgrade still runs under its own key."""
    drawn = "ab" * 32

    def legacy(status: str, key: str, exporter: str = "flags") -> ExportJob:
        return ExportJob.objects.create(
            clinic=clinic_a,
            requested_by=dana,
            exporter=exporter,
            format="csv",
            status=status,
            filters={"pseudonymise": True, "pseudonym_key": key},
        )

    done, random, queued = (
        legacy("done", STUDY_KEY),
        legacy("failed", drawn),
        legacy("queued", STUDY_KEY, "item_answers"),
    )
    out = io.StringIO()
    call_command("purge_exports", stdout=out)
    assert "2 old export job(s) no longer keep a pseudonym key." in out.getvalue()
    done.refresh_from_db()
    random.refresh_from_db()
    assert stored_anywhere(STUDY_KEY) == [f"job {queued.code}"] and stored_anywhere(drawn) == []
    assert done.filters["study_key"] is True
    assert (
        done.filters["key_fingerprint"]
        == ExportFilters(pseudonymise=True, pseudonym_key=STUDY_KEY).key_fingerprint
    )
    assert random.filters["study_key"] is False and random.filters["key_fingerprint"] == ""

    export_worker.export_job_run(job_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == "done", queued.error
    assert stored_anywhere(STUDY_KEY) == [] and queued.filters["key_fingerprint"]
    path, _, _ = export_services.export_file(job=queued)
    expected = pseudonym(clinic=clinic_a, kind="patient", value=world.patient.code, key=STUDY_KEY)
    assert f"\r\n{expected},," in path.read_bytes().decode()
