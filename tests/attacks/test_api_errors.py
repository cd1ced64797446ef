"""Finding 5 of issue 14, the API's errors: whatever goes wrong, and wherever (the parser, DRF,
a view, the middleware before DRF, Django itself), the answer is the API's JSON error shape,
never an HTML page. Probed: a 200 KB nested body was an HTML 500, a 5 MB body an HTML 400, a token
request with the database down an HTML 500."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client
from rest_framework.test import APIClient

from clinics.models import Patient
from monitoring.api.auth import MAX_BODY_BYTES, MAX_JSON_DEPTH
from tests.api.conftest import bearer, make_token, membership_code
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the API's error shape with this status and code."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields", "problems"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def token(clinic_a, dana) -> str:
    return make_token(dana, clinic_a)


@pytest.fixture
def api() -> APIClient:
    """A client that shows what a real client gets, rather than raising the server's error."""
    return APIClient(raise_request_exception=False)


@contextmanager
def database_down():
    """Every query fails as it does when PostgreSQL is stopped or unreachable."""
    error = OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
    with mock.patch.object(BaseDatabaseWrapper, "_cursor", side_effect=error):
        yield


def post_raw(
    api: APIClient, token: str | None, body: bytes | str, content_type: str = "application/json"
) -> Any:
    return api.generic("POST", "/api/v1/patients/", body, content_type=content_type, **bearer(token))


# --- Bodies --------------------------------------------------------------------------------------


def test_malformed_json_is_a_json_400(api, token):
    error = assert_error(post_raw(api, token, '{"label": '), 400, "parse_error")
    assert "JSON" in error["message"]


def test_a_200_kb_nested_body_is_a_json_413(api, token):
    """The probe's body: over the size limit, it is refused before anything parses it."""
    depth = 100_000
    assert_error(post_raw(api, token, "[" * depth + "]" * depth), 413, "too_large")


def test_a_deeply_nested_body_within_the_size_limit_is_a_json_400(api, token):
    depth = MAX_BODY_BYTES // 2 - 10  # Python's parser gave up (RecursionError) at about 1,000
    error = assert_error(post_raw(api, token, "[" * depth + "]" * depth), 400, "too_deep")
    assert str(MAX_JSON_DEPTH) in error["message"]


def test_a_body_nested_past_the_limit_is_refused_and_one_within_it_is_parsed(api, token, alice, clinic_a):
    deep: Any = "x"
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    assert_error(post_raw(api, token, json.dumps({"label": deep})), 400, "too_deep")
    within = json.dumps({"label": deep[0][0], "therapist": membership_code(alice, clinic_a)})
    assert_error(post_raw(api, token, within), 400, "invalid")  # parsed: a list is no label


def test_brackets_inside_strings_do_not_count_as_nesting(api, token, alice, clinic_a):
    body = {"label": "[[[[{{{{" * 4, "therapist": membership_code(alice, clinic_a), "external_id": '"\\['}
    response = post_raw(api, token, json.dumps(body))
    assert response.status_code == 201, response.content
    assert Patient.objects.get().label == "[[[[{{{{" * 4


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 5 * 1024 * 1024])
def test_a_body_over_the_limit_is_a_json_413(api, token, size):
    body = json.dumps({"label": "x" * size})
    error = assert_error(post_raw(api, token, body), 413, "too_large")
    assert f"{MAX_BODY_BYTES // 1024} KB" in error["message"]


def test_a_5_mb_body_from_a_browser_session_is_a_json_413(dana):
    """The probe's case: DRF reads the whole body (for the CSRF check, or to parse it), and
    Django refuses one over DATA_UPLOAD_MAX_MEMORY_SIZE with RequestDataTooBig, which was
    Django's HTML 400 page."""
    browser = sign_in(Client(enforce_csrf_checks=True, raise_request_exception=False), dana)
    browser.cookies["csrftoken"] = "probeprobeprobeprobeprobeprobepr"  # a well-formed secret
    body = json.dumps({"label": "x" * (5 * 1024 * 1024)})
    assert_error(browser.post("/api/v1/patients/", body, content_type="application/json"), 413, "too_large")
    form = "label=" + "x" * (5 * 1024 * 1024)
    response = browser.post("/api/v1/patients/", form, content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")  # JSON only: not even read


def test_a_5_mb_form_body_to_a_page_is_refused(dana):
    browser = sign_in(Client(raise_request_exception=False), dana)
    response = browser.post(
        "/clinic/clinic-a/settings/",
        "name=" + "x" * (5 * 1024 * 1024),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in (400, 413)


def test_the_wrong_content_type_is_a_json_415(api, token):
    assert_error(post_raw(api, token, "label=x", content_type="text/plain"), 415, "unsupported_media_type")


# --- Failures ----------------------------------------------------------------------------------


def test_an_unhandled_exception_in_a_view_is_a_json_500_and_is_logged(api, token, caplog):
    with mock.patch("monitoring.api.views.identity.memberships_for", side_effect=RuntimeError("boom")):
        response = api.get("/api/v1/me/", **bearer(token))
    error = assert_error(response, 500, "server_error")
    assert "boom" not in error["message"]  # no internals
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert len(logged) == 1 and "boom" in str(logged[0].exc_info[1])


def test_a_token_request_with_the_database_down_is_a_json_503(api, token):
    with database_down():
        response = api.get("/api/v1/patients/", **bearer(token))
    assert_error(response, 503, "unavailable")
    assert response["Retry-After"].isdigit()


def test_a_write_with_the_database_down_is_a_json_503(api, token, alice, clinic_a):
    body = {"label": "K.L.", "therapist": membership_code(alice, clinic_a)}
    with database_down():
        response = api.post("/api/v1/patients/", body, format="json", **bearer(token))
    assert_error(response, 503, "unavailable")


def test_a_session_request_with_the_database_down_fails_before_drf_and_is_still_json(dana):
    """The session and the user are read by the middleware, before DRF runs: Django's own
    500 handler answers, and for /api/ it answers in the API's shape."""
    browser = sign_in(Client(raise_request_exception=False), dana)
    with database_down():
        response = browser.get("/api/v1/me/")
    assert_error(response, 503, "unavailable")


def test_an_exception_in_the_middleware_is_a_json_500_for_the_api_and_a_page_otherwise(dana):
    from monitoring.security.middleware import IdleTimeoutMiddleware

    browser = sign_in(Client(raise_request_exception=False), dana)
    with mock.patch.object(IdleTimeoutMiddleware, "__call__", side_effect=RuntimeError("boom")):
        assert_error(browser.get("/api/v1/me/"), 500, "server_error")
        page = browser.get("/")
    assert page.status_code == 500 and "text/html" in page["Content-Type"]


def test_a_disallowed_host_is_a_json_400_for_the_api(api, token):
    response = api.get("/api/v1/me/", HTTP_HOST="evil.test", **bearer(token))
    assert_error(response, 400, "bad_request")


def test_an_unknown_api_path_is_a_json_404(api, token):
    assert_error(api.get("/api/v1/nothing-here/", **bearer(token)), 404, "not_found")
