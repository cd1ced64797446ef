"""FHIR as an EHR files it (docs/exports.md, "FHIR"): who rated (author and source), stable
canonical names with their CodeSystems published, OperationOutcome errors, the usual FHIR media
types, and a transaction bundle a FHIR server can load twice without duplicates.

Every resource is read twice: with fhir.resources, and by hand from plain JSON against the R4
required elements and value sets (an independent check that does not share the library's model).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from monitoring.collection.responses import response_enter
from monitoring.exports import EXPORTS, ExportFilters, render
from tests.api.conftest import Api, membership_code

pytestmark = pytest.mark.django_db

THERAPIST_RATING = {n: 4 for n in range(1, 13)}


@pytest.fixture
def therapist(tokens) -> Api:
    return Api(tokens["therapist"])


def bundle(clinic: Any, **filters: Any) -> dict[str, Any]:
    exporter, chosen = EXPORTS["item_answers"], ExportFilters(**filters)
    rendered = render(
        exporter, exporter.frame(clinic=clinic, filters=chosen), "fhir", clinic=clinic, filters=chosen
    )
    content = rendered.content if isinstance(rendered.content, bytes) else b"".join(rendered.content)
    return dict(json.loads(content))


# --- An independent reading of R4: required elements and codes, by hand --------------------------

REQUIRED = {
    "Bundle": ("type",),
    "Questionnaire": ("status",),
    "QuestionnaireResponse": ("status",),
    "CodeSystem": ("status", "content"),
    "OperationOutcome": ("issue",),
}


def r4_problems(resource: dict[str, Any]) -> list[str]:
    """What plain JSON says is wrong with ``resource`` by R4's cardinalities and value sets."""
    kind = resource.get("resourceType")
    problems = [f"{kind}.{name} missing" for name in REQUIRED.get(str(kind), ("?",)) if name not in resource]
    if kind == "Bundle":
        if resource["type"] == "transaction":
            for entry in resource.get("entry", []):
                request = entry.get("request") or {}
                if request.get("method") not in {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}:
                    problems.append("transaction entry without request.method")
                if not request.get("url"):
                    problems.append("transaction entry without request.url")
                if not str(entry.get("fullUrl", "")).startswith("urn:uuid:"):
                    problems.append("a created entry's fullUrl is not a urn:uuid")
        for entry in resource.get("entry", []):
            problems += r4_problems(entry["resource"])
    if kind == "QuestionnaireResponse":
        if resource["status"] not in {"in-progress", "completed", "amended", "entered-in-error", "stopped"}:
            problems.append("QuestionnaireResponse.status")
        for item in resource.get("item", []):
            if "linkId" not in item:
                problems.append("item.linkId missing")
        for role in ("author", "source", "subject"):
            ref = resource.get(role)
            if ref is not None and not ({"reference", "identifier", "display"} & set(ref)):
                problems.append(f"{role} is an empty reference")
    if kind == "CodeSystem":
        if resource["content"] not in {"not-present", "example", "fragment", "complete", "supplement"}:
            problems.append("CodeSystem.content")
        for concept in resource.get("concept", []):
            if not concept.get("code"):
                problems.append("concept.code missing")
    if kind == "OperationOutcome":
        for issue in resource["issue"]:
            if not {"severity", "code"} <= set(issue):
                problems.append("issue.severity/code missing")
    return problems


# --- Who rated ------------------------------------------------------------------------------------


def test_a_therapist_rating_is_authored_by_the_practitioner_and_a_patient_rating_by_the_patient(
    therapist, world, alice, clinic_a
):
    clinic_a.therapist_rating_enabled = True
    clinic_a.save(update_fields=["therapist_rating_enabled"])
    response_enter(session=world.answered, rater="therapist", answers=THERAPIST_RATING, user=alice)
    base = f"/api/v1/sessions/{world.answered.code}/responses"
    theirs = therapist.get(f"{base}/therapist/fhir/").json()
    QuestionnaireResponse.model_validate(theirs)
    assert r4_problems(theirs) == []
    practitioner = {
        "type": "Practitioner",
        "identifier": {
            "system": f"https://bordin.app/fhir/clinics/{clinic_a.code}/practitioner",
            "value": membership_code(alice, clinic_a),
        },
    }
    assert theirs["author"] == practitioner and theirs["source"] == practitioner
    assert theirs["subject"]["type"] == "Patient"
    assert "Alice" not in json.dumps(theirs) and "alice@" not in json.dumps(theirs)

    patients = therapist.get(f"{base}/patient/fhir/").json()
    assert patients["author"] == patients["source"] == patients["subject"]


# --- Canonical names and CodeSystems ---------------------------------------------------------------


def test_code_systems_live_under_the_configured_canonical_base_not_the_site(world, clinic_a, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    text = json.dumps(bundle(clinic_a))
    assert "127.0.0.1" not in text and "https://bordin.app/fhir/CodeSystem/bordin-alliance-answers" in text
    settings.FHIR_CANONICAL_BASE = "https://fhir.example.org/bordin"
    assert "https://fhir.example.org/bordin/Questionnaire/bordin-alliance" in json.dumps(bundle(clinic_a))


def test_the_bundle_publishes_a_code_system_for_every_code_of_bordins_own(world, clinic_a):
    data = bundle(clinic_a)
    systems = {
        e["resource"]["url"]: {c["code"] for c in e["resource"]["concept"]}
        for e in data["entry"]
        if e["resource"]["resourceType"] == "CodeSystem"
    }
    for url in systems:
        CodeSystem.model_validate(
            next(e["resource"] for e in data["entry"] if e["resource"].get("url") == url)
        )
    used: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "system" in node and "code" in node and "/CodeSystem/" in str(node["system"]):
                used.add((node["system"], node["code"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    assert used, "the bundle uses Bordin's codes"
    missing = [(system, code) for system, code in used if code not in systems.get(system, set())]
    assert missing == []


# --- Transactions -----------------------------------------------------------------------------------


def test_a_transaction_bundle_creates_each_resource_once_by_its_identifier(world, clinic_a):
    data = bundle(clinic_a, fhir_bundle="transaction")
    Bundle.model_validate(data)
    assert data["type"] == "transaction" and r4_problems(data) == []
    for entry in data["entry"]:
        resource, request = entry["resource"], entry["request"]
        assert request["method"] == "POST" and request["url"] == resource["resourceType"]
        if resource["resourceType"] == "QuestionnaireResponse":
            identifier = resource["identifier"]
            assert request["ifNoneExist"] == f"identifier={identifier['system']}|{identifier['value']}"
        else:
            assert request["ifNoneExist"] == f"url={resource['url']}&version={resource['version']}"
    assert r4_problems(bundle(clinic_a)) == [] and "request" not in bundle(clinic_a)["entry"][0]


# --- Errors and media types ------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/fhir+json", "application/json+fhir", "application/json"])
def test_fhir_endpoints_answer_the_usual_fhir_media_types(therapist, world, accept):
    response = therapist.get("/api/v1/instruments/bordin-alliance/1/fhir/", HTTP_ACCEPT=accept)
    assert response.status_code == 200 and response.json()["resourceType"] == "Questionnaire"
    answer = therapist.get(
        f"/api/v1/sessions/{world.answered.code}/responses/patient/fhir/", HTTP_ACCEPT=accept
    )
    assert answer.status_code == 200 and answer.json()["resourceType"] == "QuestionnaireResponse"


@pytest.mark.parametrize(
    ("who", "url", "status", "issue"),
    [
        ("therapist", "/api/v1/instruments/bordin-alliance/99/fhir/", 404, "not-found"),
        ("therapist", "/api/v1/sessions/{session}/responses/therapist/fhir/", 404, "not-found"),
        ("nobody", "/api/v1/instruments/bordin-alliance/1/fhir/", 401, "login"),
        # Addresses that do not resolve (no such rater, a version that is not a number).
        ("therapist", "/api/v1/sessions/{session}/responses/AAA/fhir/", 404, "not-found"),
        ("therapist", "/api/v1/instruments/bordin-alliance/x/fhir/", 404, "not-found"),
    ],
)
def test_fhir_endpoint_errors_are_operation_outcomes(tokens, world, who, url, status, issue):
    api = Api(tokens["therapist"] if who == "therapist" else None)
    response = api.get(url.format(session=world.answered.code), HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/fhir+json")
    outcome = json.loads(response.content)
    OperationOutcome.model_validate(outcome)
    assert r4_problems(outcome) == []
    assert outcome["issue"][0]["code"] == issue and outcome["issue"][0]["diagnostics"]
