"""What the operations do, beyond who may call them: error shapes, pagination, filters,
throttling, the audit trail, sessions and form links, staff entry, FHIR, exports, the schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from clinics.models import Patient, Session
from monitoring.api import auth as api_auth
from monitoring.exports.fhir import code_problems
from monitoring.models import EpisodeAnalysis, ExportJob, Flag, Invitation
from monitoring.models import Response as FormResponse
from tests.api.conftest import Api, make_token, membership_code
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

ANSWERS = [{"item": n, "value": 4} for n in range(1, 13)]


@pytest.fixture
def admin(tokens) -> Api:
    return Api(tokens["admin"])


@pytest.fixture
def therapist(tokens) -> Api:
    return Api(tokens["therapist"])


# --- Errors ------------------------------------------------------------------------------------


def test_a_validation_error_names_each_field(admin, alice, clinic_a):
    response = admin.post("/api/v1/patients/", {"label": 7, "contact_email": "nope", "therapist": "x"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"label", "contact_email", "therapist"}
    assert error["message"] == "Some values are not valid: contact_email, label, therapist."


def test_a_domain_refusal_is_a_400_with_the_services_message(admin, world, alice, clinic_a):
    response = admin.post(
        "/api/v1/patients/", {"label": "P.A.", "therapist": membership_code(alice, clinic_a)}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "A patient labelled 'P.A.' or with that external id already exists."
    )


def test_nested_answer_errors_name_the_item(admin, world):
    response = admin.post(
        f"/api/v1/sessions/{world.held.code}/responses/", {"answers": [{"item": 1, "value": "4"}]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"answers.0.value": ["A valid integer is required."]}


def test_answers_outside_the_scale_are_listed_under_the_field(admin, world):
    answers = [*ANSWERS[:11], {"item": 12, "value": 9}]
    response = admin.post(f"/api/v1/sessions/{world.held.code}/responses/", {"answers": answers})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["answers"] == ["Item 12: 9 is outside the scale (1 to 5)."]
    assert not FormResponse.objects.filter(session=world.held).exists()


def test_a_second_response_for_a_session_is_a_conflict(admin, world):
    response = admin.post(f"/api/v1/sessions/{world.answered.code}/responses/", {"answers": ANSWERS})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "used",
        "message": "A response for this session has already been received.",
        "fields": {},
        "problems": [],
    }


def test_malformed_json_and_other_media_types_are_refused(admin, world):
    client, headers = admin.client, {"HTTP_AUTHORIZATION": f"Bearer {admin.token}"}
    url = f"/api/v1/flags/{world.flag.code}/acknowledge/"
    broken = client.post(url, "{not json", content_type="application/json", **headers)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "parse_error"
    form = client.post(
        url, "acknowledgement=discussed", content_type="application/x-www-form-urlencoded", **headers
    )
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"


def test_unknown_paths_and_methods_answer_in_json(admin, world):
    assert admin.get("/api/v1/nothing/").json()["error"]["code"] == "not_found"
    assert admin.get("/api/v1/patients/not-a-code/").status_code == 404
    response = admin("DELETE", f"/api/v1/patients/{world.patient.code}/")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert admin("OPTIONS", "/api/v1/patients/").status_code == 405


# --- Pagination and filters ----------------------------------------------------------------------


def test_lists_are_paginated_with_limit_and_offset(admin, world, clinic_a, alice):
    Patient.objects.bulk_create(Patient(clinic=clinic_a, label=f"Z{n:02}", therapist=alice) for n in range(7))
    first = admin.get("/api/v1/patients/", {"limit": 4}).json()
    assert first["count"] == 9 and len(first["results"]) == 4
    assert first["previous"] is None and "offset=4" in first["next"]
    last = admin.get("/api/v1/patients/", {"limit": 4, "offset": 8}).json()
    assert [p["label"] for p in last["results"]] == ["Z06"] and last["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_out_of_range_pages_are_refused(admin, params, field):
    response = admin.get("/api/v1/flags/", params)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_flags_filter_by_kind_scale_time_acknowledgement_and_patient(admin, world):
    other = Flag.objects.create(
        episode=world.episode,
        session=world.answered,
        scale="task",
        kind="decline",
        magnitude=1,
        explanation=".",
    )
    Flag.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=10))
    Flag.objects.filter(pk=world.flag.pk).update(acknowledgement="discussed")

    def codes(**params: str) -> set[str]:
        return {f["code"] for f in admin.get("/api/v1/flags/", params).json()["results"]}

    assert codes() == {str(world.flag.code), str(other.code)}
    assert codes(kind="decline") == codes(scale="task") == codes(acknowledged="false") == {str(other.code)}
    assert codes(acknowledged="true") == {str(world.flag.code)}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert codes(since=since) == {str(world.flag.code)}
    assert codes(patient=str(world.unepisoded.code)) == set()
    assert admin.get("/api/v1/flags/", {"kind": "bad"}).json()["error"]["fields"] == {
        "kind": ['"bad" is not a valid choice.']
    }
    assert admin.get("/api/v1/flags/", {"acknowledged": "yes"}).status_code == 400


def test_patients_filter_by_external_id_activity_and_therapist(admin, world, alice, clinic_a):
    def labels(**params: str) -> list[str]:
        return [p["label"] for p in admin.get("/api/v1/patients/", params).json()["results"]]

    assert labels(external_id="EXT-1") == ["P.A."]
    assert labels(active="false") == ["Q.A."]
    assert labels(q="q.") == ["Q.A."]
    assert labels(therapist=membership_code(alice, clinic_a)) == ["P.A.", "Q.A."]


def test_sessions_filter_by_status_and_dates(admin, world):
    def numbers(**params: str) -> list[int]:
        return [s["number"] for s in admin.get("/api/v1/sessions/", params).json()["results"]]

    assert numbers() == [3, 2, 1]
    assert numbers(status="held") == [3, 1]
    assert numbers(date_from="2026-09-02", date_to="2026-09-10") == [2]
    assert (
        admin.get("/api/v1/sessions/", {"date_from": "2026-10-01", "date_to": "2026-09-01"}).status_code
        == 400
    )


# --- Throttling ----------------------------------------------------------------------------------


def test_each_token_has_its_own_request_budget(monkeypatch, alice, bob, clinic_a):
    monkeypatch.setattr(api_auth.ApiRateThrottle, "THROTTLE_RATES", {"api": "3/min"})
    first, second = Api(make_token(alice, clinic_a)), Api(make_token(bob, clinic_a))
    assert [first.get("/api/v1/me/").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = first.get("/api/v1/me/")
    assert refused.json()["error"]["code"] == "throttled" and int(refused["Retry-After"]) > 0
    assert second.get("/api/v1/me/").status_code == 200


# --- Audit ---------------------------------------------------------------------------------------


def test_reading_patient_data_leaves_an_access_entry(therapist, world, alice):
    therapist.get(f"/api/v1/patients/{world.patient.code}/analysis/")
    therapist.get("/api/v1/flags/")
    entries = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=alice).order_by("timestamp")
    assert [e.additional_data["what"] for e in entries] == ["patient analysis", "flag list"]
    assert entries[0].object_pk == str(world.patient.pk)
    assert entries[1].additional_data["patients"] == [str(world.patient.code)]
    assert all(e.additional_data["via"] == "api" and e.additional_data["token"] for e in entries)


# --- Sessions, links, responses ------------------------------------------------------------------


def test_a_held_session_comes_with_a_working_form_link(therapist, world, client):
    response = therapist.post(
        f"/api/v1/patients/{world.patient.code}/sessions/", {"date": "2026-10-01", "status": "held"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["number"] == 4 and body["status"] == "held"
    path = body["form_link"]["url"].split("8000", 1)[1]
    assert client.get(path).status_code == 200
    # Re-sending "held" keeps the link the patient already has.
    again = therapist("PATCH", f"/api/v1/sessions/{body['code']}/", {"status": "held"}).json()
    assert again["form_link"] == body["form_link"]
    assert Invitation.objects.filter(session__code=body["code"]).count() == 1


def test_a_scheduled_session_becomes_held_and_gets_its_link(therapist, world):
    body = therapist(
        "PATCH", f"/api/v1/sessions/{world.scheduled.code}/", {"status": "held", "date": "2026-09-09"}
    ).json()
    assert body["status"] == "held" and body["date"] == "2026-09-09" and body["form_link"]["url"]


def test_cancelling_withdraws_the_link_but_not_once_answers_are_in(therapist, world):
    link = therapist.post(f"/api/v1/sessions/{world.held.code}/link/").json()
    assert link["url"]
    cancelled = therapist("PATCH", f"/api/v1/sessions/{world.held.code}/", {"status": "cancelled"}).json()
    assert cancelled["status"] == "cancelled" and cancelled["form_link"] is None
    assert not Invitation.objects.filter(session=world.held, revoked_at=None).exists()
    refused = therapist("PATCH", f"/api/v1/sessions/{world.answered.code}/", {"status": "no_show"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "used"
    assert Session.objects.get(pk=world.answered.pk).status == "held"


def test_no_session_without_an_open_episode(admin, world):
    response = admin.post(f"/api/v1/patients/{world.unepisoded.code}/sessions/", {"date": "2026-10-01"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_episode"


def test_staff_entry_records_who_entered_it_and_withdraws_open_links(
    therapist, world, alice, django_capture_on_commit_callbacks
):
    therapist.post(f"/api/v1/sessions/{world.held.code}/link/")
    with django_capture_on_commit_callbacks(execute=True):
        response = therapist.post(f"/api/v1/sessions/{world.held.code}/responses/", {"answers": ANSWERS})
    assert response.status_code == 201
    body = response.json()
    assert body["source"] == "staff" and body["entered_by"] == "alice@a.test" and body["rater"] == "patient"
    assert [a["value"] for a in body["answers"]] == [4] * 12
    assert {s["scale"]: s["score"] for s in body["scores"]}["total"] == 4.0
    assert not Invitation.objects.filter(session=world.held, revoked_at=None).exists()
    assert EpisodeAnalysis.objects.get(episode=world.episode).flagged_through == 3  # analysed on commit


def test_therapist_ratings_need_the_clinic_setting_and_the_episodes_therapist(
    therapist, admin, world, clinic_a
):
    body = {"rater": "therapist", "answers": ANSWERS}
    refused = therapist.post(f"/api/v1/sessions/{world.held.code}/responses/", body)
    assert refused.status_code == 403
    clinic_a.therapist_rating_enabled = True
    clinic_a.save()
    assert admin.post(f"/api/v1/sessions/{world.held.code}/responses/", body).status_code == 403
    assert therapist.post(f"/api/v1/sessions/{world.held.code}/responses/", body).status_code == 201


def test_acknowledging_a_flag_acknowledges_the_event_once(therapist, world):
    sibling = Flag.objects.create(
        episode=world.episode,
        session=world.answered,
        scale="bond",
        kind="rupture",
        magnitude=1,
        explanation=".",
    )
    url = f"/api/v1/flags/{world.flag.code}/acknowledge/"
    done = therapist.post(url, {"acknowledgement": "not_relevant", "note": "Discussed in supervision"}).json()
    assert {f["code"] for f in done["acknowledged"]} == {str(world.flag.code), str(sibling.code)}
    assert done["acknowledged"][0]["acknowledged_by"] == "alice@a.test"
    again = therapist.post(url, {"acknowledgement": "discussed"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "acknowledged"
    too_long = therapist.post(
        f"/api/v1/flags/{sibling.code}/acknowledge/", {"acknowledgement": "discussed", "note": "x" * 501}
    )
    assert too_long.json()["error"]["fields"] == {
        "note": ["Ensure this field has no more than 500 characters."]
    }


def test_the_analysis_is_the_patient_pages(therapist, world, client, alice):
    body = therapist.get(f"/api/v1/patients/{world.patient.code}/analysis/").json()
    assert body["episode"]["code"] == str(world.episode.code)
    assert [s["number"] for s in body["sessions"]] == [3, 2, 1]
    assert body["sessions"][2]["scores"]["total"] == 5.0
    assert body["sessions"][2]["patient_answers"][0] == {"item": 1, "value": 5}
    assert [f["code"] for f in body["flags"]] == [str(world.flag.code)]
    assert {lv["scale"] for lv in body["levels"]} >= {"total", "goal", "task", "bond"}
    sign_in(client, alice)
    page = client.get(f"/patients/{world.patient.code}/").content.decode()
    assert body["flags"][0]["title"] in page


# --- FHIR ----------------------------------------------------------------------------------------


def test_a_response_reads_as_a_valid_fhir_questionnaire_response(therapist, world):
    response = therapist.get(f"/api/v1/sessions/{world.answered.code}/responses/patient/fhir/")
    assert response["Content-Type"] == "application/fhir+json"
    resource = response.json()
    QuestionnaireResponse.model_validate(resource)
    assert not code_problems(resource)
    assert resource["subject"]["identifier"]["value"] == "EXT-1"
    assert [i["answer"][0]["valueCoding"]["code"] for i in resource["item"]] == ["5"] * 12
    assert (
        therapist.get(f"/api/v1/sessions/{world.answered.code}/responses/therapist/fhir/").status_code == 404
    )


def test_an_instrument_reads_as_a_valid_fhir_questionnaire(therapist, world):
    response = therapist.get("/api/v1/instruments/bordin-alliance/1/fhir/", {"language": "de"})
    assert response["Content-Type"] == "application/fhir+json"
    resource = response.json()
    Questionnaire.model_validate(resource)
    assert not code_problems(resource)
    assert resource["language"] == "de" and len(resource["item"]) == 12
    assert therapist.get("/api/v1/instruments/bordin-alliance/99/fhir/").status_code == 404


# --- Exports -------------------------------------------------------------------------------------


def test_an_export_runs_and_downloads_with_an_audit_entry(
    admin, world, dana, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        started = admin.post("/api/v1/exports/", {"report": "item_answers", "format": "csv"})
    assert started.status_code == 202
    code = started.json()["code"]
    assert started["Location"] == f"/api/v1/exports/{code}/"
    status = admin.get(f"/api/v1/exports/{code}/").json()
    assert status["status"] == "done" and status["download_url"].endswith(f"/api/v1/exports/{code}/download/")
    download = admin.get(f"/api/v1/exports/{code}/download/", HTTP_ACCEPT="text/csv")
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert b"EXT-1" in b"".join(download.streaming_content)
    audit = LogEntry.objects.filter(additional_data__job=code, additional_data__event="download").get()
    assert audit.additional_data["via"] == "api" and audit.actor == dana


def test_an_unfinished_or_failed_export_is_a_conflict(admin, world, dana):
    job = ExportJob.objects.create(
        clinic=world.patient.clinic, requested_by=dana, exporter="flags", format="csv"
    )
    queued = admin.get(f"/api/v1/exports/{job.code}/download/")
    assert queued.status_code == 409 and queued.json()["error"]["message"] == "This export is not ready yet."
    ExportJob.objects.filter(pk=job.pk).update(status="failed", error="The disk is full.")
    assert admin.get(f"/api/v1/exports/{job.code}/").json()["error"] == "The disk is full."
    assert (
        admin.get(f"/api/v1/exports/{job.code}/download/").json()["error"]["message"] == "The disk is full."
    )


def test_export_filters_are_checked_by_the_service(admin, world, alice, clinic_a):
    assert (
        admin.post("/api/v1/exports/", {"report": "patient_report", "format": "pdf"}).json()["error"][
            "message"
        ]
        == "Choose the patient for a one-patient report."
    )
    flags_pdf = admin.post("/api/v1/exports/", {"report": "item_answers", "format": "pdf"}).json()["error"]
    assert flags_pdf["message"] == "Item answers can be exported as csv, xlsx, fhir, not 'pdf'."
    body = {"report": "flags", "format": "csv", "start": "2026-10-01", "end": "2026-09-01"}
    assert admin.post("/api/v1/exports/", body).json()["error"]["fields"] == {
        "end": ["Must not be before start."]
    }
    unknown = admin.post(
        "/api/v1/exports/", {"report": "flags", "format": "csv", "therapist": str(world.patient.code)}
    )
    assert list(unknown.json()["error"]["fields"]) == ["therapist"]
    by_therapist = {"report": "flags", "format": "csv", "therapist": membership_code(alice, clinic_a)}
    assert admin.post("/api/v1/exports/", by_therapist).status_code == 202


# --- Schema and docs -----------------------------------------------------------------------------


def test_every_operation_documents_its_errors(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    assert len(schema["paths"]) > 10
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403", "429"} <= codes, (method, path)
            assert ("404" in codes) == ("{" in path), (method, path)
            if operation.get("requestBody") or any(
                p["in"] == "query" for p in operation.get("parameters", [])
            ):
                assert "400" in codes, (method, path)
            # FHIR endpoints answer their errors as OperationOutcomes, the others in the API's shape.
            error = "OperationOutcome" if operation["operationId"].endswith("_fhir") else "Error"
            for code in codes - {"200", "201", "202", "204"}:
                schema_ref = next(iter(operation["responses"][code]["content"].values()))["schema"]
                assert schema_ref == {"$ref": f"#/components/schemas/{error}"}
    assert {"tokenAuth", "cookieAuth"} == set(schema["components"]["securitySchemes"])


def test_the_docs_page_uses_our_own_static_files_and_no_inline_script(client):
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "<script>" not in html and "cdn" not in html.lower()
    assert "script-src 'self'" in page["Content-Security-Policy"]
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def test_the_schema_is_public_but_the_data_is_not(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/v1/patients/").status_code == 401


def test_a_session_dated_before_the_latest_is_refused_with_the_reason(therapist, world):
    response = therapist.post(f"/api/v1/patients/{world.patient.code}/sessions/", {"date": "2026-09-10"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "date_order"
    assert error["message"].startswith(
        "Session 3 is already on 15 Sep 2026, so a new session 4 cannot be dated"
    )
    assert world.episode.sessions.count() == 3
    added = therapist.post(f"/api/v1/patients/{world.patient.code}/sessions/", {"date": "2026-09-15"})
    assert added.status_code == 201 and added.json()["number"] == 4
