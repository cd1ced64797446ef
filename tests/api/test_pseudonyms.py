"""Pseudonymised exports cannot be re-linked (docs/exports.md, docs/security.md): every
identifier in them (patient, therapist, response; sessions and flags are not identified at all)
is a keyed hash under the export's own key, so none of them appears in an identified export or
in any answer of the API, and no identifier of those appears in them."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import openpyxl
import pytest

from clinics.models import Episode, Membership, Patient, Session
from monitoring.exports import EXPORTS, ExportFilters, render
from monitoring.models import Flag, Response
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

REPORTS = [(i, f) for i, e in EXPORTS.items() for f in e.formats if f != "pdf" and not e.needs_patient]


def produce(clinic: Any, identifier: str, fmt: str, filters: ExportFilters) -> str:
    exporter = EXPORTS[identifier]
    rendered = render(
        exporter, exporter.frame(clinic=clinic, filters=filters), fmt, clinic=clinic, filters=filters
    )
    data = rendered.content if isinstance(rendered.content, bytes) else b"".join(rendered.content)
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        rows = [list(r) for sheet in book.worksheets for r in sheet.iter_rows(values_only=True)]
        return json.dumps(rows, default=str)
    return data.decode()


def identifiers_in(identifier: str, fmt: str, text: str) -> set[str]:
    """The identifiers a pseudonymised file holds: its people columns, or every FHIR id,
    identifier and fullUrl."""
    found: set[str] = set()
    if fmt == "fhir":
        bundle = json.loads(text)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] != "QuestionnaireResponse":
                continue
            found |= {
                resource["id"],
                resource["identifier"]["value"],
                entry["fullUrl"].removeprefix("urn:uuid:"),
            }
            for role in ("subject", "author", "source"):
                found.add(resource[role]["identifier"]["value"])
            assert "identifier" not in resource["encounter"]
        return found
    rows = json.loads(text) if fmt == "xlsx" else [line.split(",") for line in text.splitlines()]
    header = rows[0]
    for name in ("patient", "therapist"):
        if name in header:
            found |= {str(row[header.index(name)]) for row in rows[1:] if row[header.index(name)]}
    return found


def test_no_identifier_of_a_pseudonymised_export_appears_in_the_identified_exports_or_the_api(
    tokens, world, clinic_a
):
    pseudonymised, tokens_found = "", set()
    for identifier, fmt in REPORTS:
        text = produce(clinic_a, identifier, fmt, ExportFilters(pseudonymise=True))
        pseudonymised += text
        tokens_found |= identifiers_in(identifier, fmt, text)
    assert len(tokens_found) >= 4  # a patient, a therapist, a response's id and full URL at least

    identified = "".join(produce(clinic_a, identifier, fmt, ExportFilters()) for identifier, fmt in REPORTS)
    api = Api(tokens["therapist"])
    patient = world.patient.code
    urls = [
        "/api/v1/patients/",
        f"/api/v1/patients/{patient}/",
        f"/api/v1/patients/{patient}/episodes/",
        "/api/v1/sessions/",
        f"/api/v1/sessions/{world.answered.code}/responses/patient/fhir/",
        "/api/v1/responses/",
        "/api/v1/flags/",
        "/api/v1/staff/",
    ]
    answers = []
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, url
        answers.append(response.content.decode())
    public = identified + "".join(answers)
    assert "EXT-1" in public  # the identified side does identify
    leaked = sorted(t for t in tokens_found if t in public)
    assert leaked == []

    # ...and the other way round: no code the clinic's records carry is in the pseudonymised files.
    codes = {
        *map(str, Patient.objects.filter(clinic=clinic_a).values_list("code", flat=True)),
        *map(str, Episode.objects.filter(patient__clinic=clinic_a).values_list("code", flat=True)),
        *map(str, Session.objects.filter(episode__patient__clinic=clinic_a).values_list("code", flat=True)),
        *map(str, Flag.objects.filter(episode__patient__clinic=clinic_a).values_list("code", flat=True)),
        *map(str, Membership.objects.filter(clinic=clinic_a).values_list("code", flat=True)),
        *(
            str(uuid.uuid5(clinic_a.code, f"response:{pk}"))
            for pk in Response.objects.filter(session__episode__patient__clinic=clinic_a).values_list(
                "pk", flat=True
            )
        ),
        "EXT-1",
    }
    assert sorted(code for code in codes if code in pseudonymised) == []


def test_two_exports_join_only_under_the_same_study_key(world, clinic_a):
    def patients(filters: ExportFilters) -> set[str]:
        return identifiers_in("item_answers", "csv", produce(clinic_a, "item_answers", "csv", filters))

    study = "the-study-key-of-the-trial-2026"
    assert patients(ExportFilters(pseudonymise=True, pseudonym_key=study)) == patients(
        ExportFilters(pseudonymise=True, pseudonym_key=study)
    )
    assert not patients(ExportFilters(pseudonymise=True)) & patients(ExportFilters(pseudonymise=True))
