"""Property-based tests of every operation against the live OpenAPI schema (schemathesis 4).

The schema is fetched from /api/schema/ through the WSGI application, as a client would; that
request touches no database, so it can happen at collection. Each operation is one test, run with
a bounded number of generated requests (positive and negative), authenticated with a clinic
admin's token made inside the test, once the test database exists. Half of the well-formed
requests aim at objects that exist (the patient, session, flag, export of the world fixture), so
the fuzzing reaches the code behind the 404.

Checks: schemathesis's defaults (no 5xx, status codes, content types, headers and bodies conform
to the schema, schema-violating input is refused with 4xx, missing credentials are refused)
except ``positive_data_acceptance``: a request can be well formed and still break a rule the
schema cannot express (a label already taken, a session with answers cannot be cancelled), and
the API rightly answers 400 or 409 then. ``API_FUZZ_EXAMPLES=100`` runs a deeper search.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.api.conftest import World, make_token, membership_code
from tests.auth import sign_in

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))
_turn = itertools.count()


#: Django accepts the bare 32-character secret as the CSRF header, matching the cookie.
CSRF = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"


@pytest.fixture
def _keep_the_test_connection() -> Iterator[None]:
    """Requests go through the WSGI application itself, not Django's test client, so Django would
    close the database connection after each one (and with it, on PostgreSQL, the test's
    transaction). The test client prevents that the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz(db, _keep_the_test_connection, world: World, dana, alice, clinic_a) -> dict[str, Any]:
    """The admin's credentials (a token; a browser session for minting tokens, which tokens may
    not do) and the codes of real objects, by the first segment of the path."""
    browser = Client()
    sign_in(browser, dana)
    return {
        "headers": {"Authorization": f"Bearer {make_token(dana, clinic_a)}"},
        "session": {
            "headers": {"X-CSRFToken": CSRF},
            "cookies": {"sessionid": browser.cookies["sessionid"].value, "csrftoken": CSRF},
        },
        "therapist": membership_code(alice, clinic_a),
        "codes": {
            "patients": str(world.patient.code),
            "episodes": str(world.episode.code),
            "sessions": str(world.answered.code),
            "flags": str(world.flag.code),
            "safety-alerts": str(world.alert.code),
            "exports": str(world.job.code),
            "tokens": str(world.spare_token.code),
            "instruments": "bordin-alliance",
            "fhir": "bordin-alliance-answers",
        },
    }


def aim_at_real_objects(case: Any, fuzz: dict[str, Any]) -> None:
    """Every other well-formed request names objects that exist, in its path and as the
    therapist or patient of its body. Only positive cases: a negative one may be negative
    *because of* those values, and must stay so."""
    if not case.meta or not case.meta.generation.mode.is_positive or next(_turn) % 2:
        return
    if "id" in case.path_parameters:  # a FHIR read, /api/v1/fhir/{type}/{id}
        case.path_parameters["id"] = fuzz["codes"]["fhir"]
    elif case.path_parameters:
        case.path_parameters["code"] = fuzz["codes"][case.operation.path.split("/")[3]]
        if "version" in case.path_parameters:
            case.path_parameters["version"] = "1"
    if isinstance(case.body, dict):
        if "therapist" in case.body:
            case.body["therapist"] = fuzz["therapist"]
        if "patient" in case.body:
            case.body["patient"] = fuzz["codes"]["patients"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_conforms_to_its_schema(case, fuzz):
    aim_at_real_objects(case, fuzz)
    excluded = [positive_data_acceptance]
    if case.operation.label == "POST /api/v1/tokens/":
        credentials = fuzz["session"]
        # Its probe of bad credentials replays our session cookie; the permission table covers it.
        excluded.append(ignored_auth)
    else:
        credentials = {"headers": fuzz["headers"]}
    case.call_and_validate(**credentials, excluded_checks=excluded)
