"""Bordin's own code systems are published (docs/api.md, docs/exports.md): every CodeSystem a FHIR
bundle carries is read at the API's FHIR base under the path of its canonical url,
`/api/v1/fhir/CodeSystem/{id}`, as the same resource, and parses with fhir.resources."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.operationoutcome import OperationOutcome

from monitoring.exports import EXPORTS, ExportFilters, fhir, render
from tests.api.conftest import Api, make_token

pytestmark = pytest.mark.django_db

FHIR_BASE = "/api/v1/fhir"


@pytest.fixture
def therapist(alice, clinic_a) -> Api:
    return Api(make_token(alice, clinic_a))


def bundle_codesystems(clinic) -> list[dict]:
    exporter, filters = EXPORTS["item_answers"], ExportFilters()
    rendered = render(
        exporter, exporter.frame(clinic=clinic, filters=filters), "fhir", clinic=clinic, filters=filters
    )
    content = rendered.content
    bundle = json.loads(content if isinstance(content, bytes) else b"".join(content))
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CodeSystem"]


def test_every_code_system_of_a_bundle_is_read_at_its_canonical_path(therapist, world, clinic_a):
    systems = bundle_codesystems(clinic_a)
    assert {s["id"] for s in systems} >= {"bordin-alliance-answers", "bordin-alliance-subscales"}
    for system in systems:
        path = system["url"].replace(fhir.base_url(), FHIR_BASE)
        answer = therapist.get(path, HTTP_ACCEPT="application/fhir+json")
        assert answer.status_code == 200, (path, answer.content)
        assert answer["Content-Type"].startswith("application/fhir+json")
        resource = answer.json()
        CodeSystem.model_validate(resource)
        assert not fhir.code_problems(resource)
        assert resource == system  # the very resource the bundle carries


def test_with_a_canonical_base_on_the_deployment_the_canonical_url_itself_answers(therapist, world, settings):
    settings.FHIR_CANONICAL_BASE = "https://clinic.example/api/v1/fhir"
    answer = therapist.get(
        f"{FHIR_BASE}/CodeSystem/bordin-alliance-answers", HTTP_ACCEPT="application/json+fhir"
    )
    resource = answer.json()
    assert resource["url"] == "https://clinic.example/api/v1/fhir/CodeSystem/bordin-alliance-answers"
    assert urlparse(resource["url"]).path == f"{FHIR_BASE}/CodeSystem/bordin-alliance-answers"
    assert [c["display"] for c in resource["concept"]] == [
        "Seldom",
        "Sometimes",
        "Fairly often",
        "Very often",
        "Always",
    ]


def test_a_version_and_a_language_can_be_asked_for(therapist, world):
    one = therapist.get(f"{FHIR_BASE}/CodeSystem/bordin-alliance-subscales", {"version": 1, "language": "de"})
    assert one.status_code == 200 and one.json()["version"] == "1" and one.json()["language"] == "de"
    missing = therapist.get(f"{FHIR_BASE}/CodeSystem/bordin-alliance-subscales", {"version": 99})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "name",
    ["bordin-alliance", "phq9-answers", "nothing-answers", "x" * 300, "%C2%84"],
)
def test_an_unknown_code_system_is_an_operation_outcome_404(therapist, world, name):
    answer = therapist.get(f"{FHIR_BASE}/CodeSystem/{name}", HTTP_ACCEPT="application/fhir+json")
    assert answer.status_code == 404
    outcome = OperationOutcome.model_validate(answer.json())
    assert outcome.issue[0].code == "not-found"


def test_the_code_systems_need_a_signed_in_user_or_token(world):
    answer = Api(None).get(f"{FHIR_BASE}/CodeSystem/bordin-alliance-answers")
    assert answer.status_code == 401 and answer.json()["resourceType"] == "OperationOutcome"


def test_the_error_codes_an_operation_outcome_names_are_published(therapist, world):
    """An OperationOutcome's issue.details names {base}/CodeSystem/api-errors: it answers, and
    holds the code of the error that named it."""
    outcome = therapist.get(
        f"{FHIR_BASE}/CodeSystem/nothing-answers", HTTP_ACCEPT="application/fhir+json"
    ).json()
    (coding,) = outcome["issue"][0]["details"]["coding"]
    answer = therapist.get(
        coding["system"].replace(fhir.base_url(), FHIR_BASE), HTTP_ACCEPT="application/fhir+json"
    )
    assert answer.status_code == 200
    resource = answer.json()
    CodeSystem.model_validate(resource)
    assert resource["content"] == "fragment" and not fhir.code_problems(resource)
    assert coding["code"] in {c["code"] for c in resource["concept"]}
    # Every code is in docs/api.md's table of errors (the token codes as `token_*`).
    documented = Path("docs/api.md").read_text()
    codes = {c["code"] for c in resource["concept"]}
    assert all(f"`{code}`" in documented for code in codes if not code.startswith("token_"))
    assert {"token_malformed", "token_unknown", "token_revoked", "token_expired", "token_inactive"} <= codes
