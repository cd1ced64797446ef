"""The OpenAPI schema as a third party reads it: the reference validator (openapi-spec-validator)
accepts the whole of it, and the download's 200 is a file that generated clients read as bytes.
A client generated from it is used against a live server in test_generated_client.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import OpenAPIV30SpecValidator

from tests.api.conftest import Api, make_token


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = Client(HTTP_HOST="127.0.0.1").get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return dict(json.loads(response.content))


def test_it_validates_with_openapi_spec_validator(schema):
    assert schema["openapi"].startswith("3.0")
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV30SpecValidator(schema).iter_errors()
    ]
    assert errors == []


def test_no_default_breaks_its_own_format(schema):
    # The validator's first complaint was `contact_email` with format email and default "".
    create = schema["components"]["schemas"]["PatientCreateInputRequest"]["properties"]["contact_email"]
    assert "default" not in create
    assert {"type": "string", "format": "email"} in create["oneOf"]  # or blank, to leave it out


def test_the_download_is_one_file_read_as_bytes(schema):
    ok = schema["paths"]["/api/v1/exports/{code}/download/"]["get"]["responses"]["200"]["content"]
    # Generated clients read the body by the first media type they know: it must be bytes.
    assert next(iter(ok)) == "application/octet-stream"
    assert set(ok) >= {"text/csv", "application/pdf", "application/fhir+json"}
    assert all(media["schema"] == {"type": "string", "format": "binary"} for media in ok.values())


def test_the_patient_of_a_patient_report_is_documented(schema):
    patient = schema["components"]["schemas"]["ExportInputRequest"]["properties"]["patient"]
    assert "patient_report" in patient["description"] and "GET /api/v1/patients/" in patient["description"]
    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    assert '"report": "patient_report", "format": "pdf", "patient": "<patient code>"' in docs


@pytest.mark.django_db
def test_a_patient_report_is_started_with_the_patients_code_as_documented(world, dana, clinic_a):
    api = Api(make_token(dana, clinic_a))
    missing = api.post("/api/v1/exports/", {"report": "patient_report", "format": "csv"})
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "Choose the patient for a one-patient report."
    body = {"report": "patient_report", "format": "csv", "patient": str(world.patient.code)}
    assert api.post("/api/v1/exports/", body).status_code == 202
    other = api.post("/api/v1/exports/", {**body, "patient": str(world.other_patient.code)})
    assert other.status_code == 400
