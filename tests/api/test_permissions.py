"""The permission table: every operation of the API, for every role, with the status it must get.

Roles (all with API tokens): the patient's therapist (alice), her colleague (bob), the clinic's
admin (dana), another clinic's admin (erin), alice's supervisor (sam), nobody, and alice's revoked
and expired tokens. The rules are the pages': a therapist sees their own patients, an admin their
clinic's, a supervisor their assigned therapists' (read-only), and anything of another clinic is
404, never 403, so its existence is not revealed. Admin-only actions (adding patients, opening and
closing episodes, exports) are 403 for a therapist who can see the patient; every write is 403 for
the supervisor. Minting tokens needs a browser session, so every token gets 403 there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, World, membership_code

pytestmark = pytest.mark.django_db

ROLES = (
    "therapist",
    "colleague",
    "admin",
    "other clinic",
    "supervisor",
    "anonymous",
    "revoked token",
    "expired token",
)
ANSWERS = [{"item": n, "value": 4} for n in range(1, 13)]


def row(therapist: int, colleague: int, admin: int, other: int, *, supervisor: int) -> dict[str, int]:
    """Expected statuses; the last three roles are always 401."""
    return {
        "therapist": therapist,
        "colleague": colleague,
        "admin": admin,
        "other clinic": other,
        "supervisor": supervisor,
        "anonymous": 401,
        "revoked token": 401,
        "expired token": 401,
    }


EVERYONE = row(200, 200, 200, 200, supervisor=200)
# Reads of alice's patient: she, the clinic's admin and her supervisor.
OWNERS = row(200, 404, 200, 404, supervisor=200)
# Writes on alice's patient: she and the clinic's admin; her supervisor sees it but is refused.
OWNERS_WRITE = row(200, 404, 200, 404, supervisor=403)
ADMIN_WRITE = row(403, 404, 200, 404, supervisor=403)

# (operation, method, path with {placeholders} filled from the world, body, expected by role)
TABLE: list[tuple[str, str, str, Any, dict[str, int]]] = [
    ("me", "GET", "/api/v1/me/", None, EVERYONE),
    ("tokens_list", "GET", "/api/v1/tokens/", None, EVERYONE),
    ("tokens_create", "POST", "/api/v1/tokens/", {"name": "x"}, row(403, 403, 403, 403, supervisor=403)),
    (
        "tokens_revoke",
        "DELETE",
        "/api/v1/tokens/{spare_token}/",
        None,
        row(204, 404, 204, 404, supervisor=404),
    ),
    ("staff_list", "GET", "/api/v1/staff/", None, EVERYONE),
    ("patients_list", "GET", "/api/v1/patients/", None, EVERYONE),
    # erin adds to her own clinic, where alice's membership code names nobody: a field error.
    (
        "patients_create",
        "POST",
        "/api/v1/patients/",
        {"label": "N", "therapist": "{alice_code}"},
        row(403, 403, 201, 400, supervisor=403),
    ),
    ("patients_retrieve", "GET", "/api/v1/patients/{patient}/", None, OWNERS),
    ("patients_update", "PATCH", "/api/v1/patients/{patient}/", {"contact_phone": "123"}, ADMIN_WRITE),
    ("patients_analysis", "GET", "/api/v1/patients/{patient}/analysis/", None, OWNERS),
    ("episodes_list", "GET", "/api/v1/patients/{patient}/episodes/", None, OWNERS),
    (
        "episodes_create",
        "POST",
        "/api/v1/patients/{unepisoded}/episodes/",
        {"started_on": "2026-10-01"},
        row(403, 404, 201, 404, supervisor=403),
    ),
    ("episodes_retrieve", "GET", "/api/v1/episodes/{episode}/", None, OWNERS),
    ("episodes_close", "POST", "/api/v1/episodes/{episode}/close/", {"on": "2026-12-01"}, ADMIN_WRITE),
    (
        "sessions_create",
        "POST",
        "/api/v1/patients/{patient}/sessions/",
        {"date": "2026-10-01"},
        row(201, 404, 201, 404, supervisor=403),
    ),
    ("sessions_list", "GET", "/api/v1/sessions/", None, EVERYONE),
    ("sessions_retrieve", "GET", "/api/v1/sessions/{answered}/", None, OWNERS),
    ("sessions_update", "PATCH", "/api/v1/sessions/{scheduled}/", {"status": "held"}, OWNERS_WRITE),
    (
        "sessions_link_create",
        "POST",
        "/api/v1/sessions/{held}/link/",
        None,
        row(201, 404, 201, 404, supervisor=403),
    ),
    (
        "responses_create",
        "POST",
        "/api/v1/sessions/{held}/responses/",
        {"answers": ANSWERS},
        row(201, 404, 201, 404, supervisor=403),
    ),
    ("responses_retrieve", "GET", "/api/v1/sessions/{answered}/responses/patient/", None, OWNERS),
    ("responses_fhir", "GET", "/api/v1/sessions/{answered}/responses/patient/fhir/", None, OWNERS),
    ("responses_list", "GET", "/api/v1/responses/", None, EVERYONE),
    ("caseload", "GET", "/api/v1/caseload/", None, EVERYONE),
    ("flags_list", "GET", "/api/v1/flags/", None, EVERYONE),
    ("flags_retrieve", "GET", "/api/v1/flags/{flag}/", None, OWNERS),
    (
        "flags_acknowledge",
        "POST",
        "/api/v1/flags/{flag}/acknowledge/",
        {"acknowledgement": "discussed"},
        OWNERS_WRITE,
    ),
    ("flags_unacknowledge", "POST", "/api/v1/flags/{flag}/unacknowledge/", None, OWNERS_WRITE),
    ("safety_alerts_list", "GET", "/api/v1/safety-alerts/", None, EVERYONE),
    ("safety_alerts_retrieve", "GET", "/api/v1/safety-alerts/{alert}/", None, OWNERS),
    (
        "safety_alerts_follow_up",
        "POST",
        "/api/v1/safety-alerts/{alert}/follow-up/",
        {"follow_up": "contacted", "note": "Called her; safe, plan agreed."},
        OWNERS_WRITE,
    ),
    ("instruments_list", "GET", "/api/v1/instruments/", None, EVERYONE),
    ("instruments_retrieve", "GET", "/api/v1/instruments/bordin-alliance/1/", None, EVERYONE),
    ("instruments_fhir", "GET", "/api/v1/instruments/bordin-alliance/1/fhir/", None, EVERYONE),
    ("codesystems_fhir", "GET", "/api/v1/fhir/CodeSystem/bordin-alliance-answers", None, EVERYONE),
    ("exports_reports", "GET", "/api/v1/exports/reports/", None, EVERYONE),
    ("exports_list", "GET", "/api/v1/exports/", None, EVERYONE),
    # erin exports her own clinic's data: allowed. Therapists may not export at all.
    (
        "exports_create",
        "POST",
        "/api/v1/exports/",
        {"report": "session_scores", "format": "csv"},
        row(403, 403, 202, 202, supervisor=403),
    ),
    ("exports_retrieve", "GET", "/api/v1/exports/{job}/", None, row(404, 404, 200, 404, supervisor=404)),
    (
        "exports_download",
        "GET",
        "/api/v1/exports/{job}/download/",
        None,
        row(404, 404, 200, 404, supervisor=404),
    ),
]


def fill(template: Any, world: World, alice: Any, clinic_a: Any) -> Any:
    values = {
        "spare_token": world.spare_token.code,
        "patient": world.patient.code,
        "unepisoded": world.unepisoded.code,
        "episode": world.episode.code,
        "answered": world.answered.code,
        "scheduled": world.scheduled.code,
        "held": world.held.code,
        "flag": world.flag.code,
        "alert": world.alert.code,
        "job": world.job.code,
        "alice_code": membership_code(alice, clinic_a),
    }
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: fill(v, world, alice, clinic_a) for k, v in template.items()}
    return template


def test_the_table_covers_every_operation_of_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert operations == {name for name, *_ in TABLE}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("operation", "method", "path", "body", "expected"), TABLE, ids=[t[0] for t in TABLE]
)
def test_permission_table(role, operation, method, path, body, expected, tokens, world, alice, clinic_a):
    response = Api(tokens[role])(
        method, fill(path, world, alice, clinic_a), fill(body, world, alice, clinic_a)
    )
    assert response.status_code == expected[role], response.content[:300]
    if response.status_code >= 400:
        error = api_error(response.json())
        assert error["code"] and error["message"]
    if response.status_code == 404:
        # The same words whether the object exists elsewhere or not at all.
        assert api_error(response.json())["code"] == "not_found"


def test_a_supervisor_reads_a_session_without_its_form_link(tokens, world):
    """A form link answers as the patient: the session read gives it to the therapist, never to
    the supervisor, who sees the session read-only."""
    path = f"/api/v1/sessions/{world.held.code}/"
    Api(tokens["therapist"]).post(f"{path}link/")
    assert Api(tokens["therapist"]).get(path).json()["form_link"]["url"]
    seen = Api(tokens["supervisor"]).get(path)
    assert seen.status_code == 200 and seen.json()["form_link"] is None
    refused = Api(tokens["supervisor"]).post(
        f"/api/v1/flags/{world.flag.code}/acknowledge/", {"acknowledgement": "discussed"}
    )
    assert refused.json()["error"] == {
        "fields": {},
        "problems": [],
        "code": "permission_denied",
        "message": "You see this patient as a supervisor, read-only: only the patient's therapist and "
        "the clinic's admins can acknowledge flags.",
    }


def api_error(body: dict) -> dict:
    """The API's error code and message: ``{"error": ...}``, or on a FHIR endpoint an
    OperationOutcome carrying the same code (issue.details) and message (issue.diagnostics)."""
    if body.get("resourceType") == "OperationOutcome":
        issue = body["issue"][0]
        return {"code": issue["details"]["coding"][0]["code"], "message": issue["diagnostics"]}
    return body["error"]
