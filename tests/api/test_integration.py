"""An integration, end to end, over real HTTP against a running server (pytest-django's
live_server, the ``requests`` client): what a health record system does with Bordin's API.

The admin signs in and creates a token (the only step that needs a browser session); the
integration then adds a patient and an episode, pushes held sessions with the patient's answers,
reads the flags the analysis raised, acknowledges one, exports the clinic's scores and downloads
them, and finally its token is revoked.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
import requests

from monitoring.analytics.simulate import simulate_cohort
from tests.auth import totp_code, totp_enable
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


class Integration:
    """The health record's side: a base URL, a token, JSON in and out."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: int, body: Any = None, **params: Any) -> Any:
        response = self.http.request(method, self.base + path, json=body, params=params or None, timeout=30)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        return response


def sign_in_and_create_token(base: str, email: str, secret: str) -> str:
    """A real sign-in over HTTP: password, then the authenticator code."""
    browser = requests.Session()
    browser.get(f"{base}/accounts/login/", timeout=30)
    password_step = browser.post(
        f"{base}/accounts/login/",
        data={"login": email, "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        timeout=30,
    )
    assert password_step.url == f"{base}/accounts/2fa/authenticate/", password_step.url
    signed_in = browser.post(
        password_step.url,
        data={"code": totp_code(secret), "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        timeout=30,
    )
    assert signed_in.url.rstrip("/") == base, signed_in.url
    created = browser.post(
        f"{base}/api/v1/tokens/",
        json={"name": "Health record"},
        headers={"X-CSRFToken": browser.cookies["csrftoken"]},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


def test_a_health_record_integration_end_to_end(
    live_server, clinic_a, dana, alice, instrument, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    base = live_server.url
    ehr = Integration(base, sign_in_and_create_token(base, "dana@a.test", totp_enable(dana)))

    me = ehr.call("GET", "/api/v1/me/", 200).json()
    assert me["authenticated_by"] == "token" and me["memberships"][0]["role"] == "admin"
    staff = ehr.call("GET", "/api/v1/staff/", 200).json()["results"]
    therapist = next(m["code"] for m in staff if m["email"] == "alice@a.test")

    patient = ehr.call(
        "POST", "/api/v1/patients/", 201, {"label": "R.K.", "external_id": "EHR-4711", "therapist": therapist}
    ).json()
    assert ehr.call("GET", "/api/v1/patients/", 200, external_id="EHR-4711").json()["count"] == 1
    episode = ehr.call(
        "POST",
        f"/api/v1/patients/{patient['code']}/episodes/",
        201,
        {"started_on": "2026-01-05", "treatment": "cbt"},
    ).json()
    assert episode["is_open"] and episode["therapist"]["code"] == therapist

    # Fourteen weekly sessions with a rupture that is not repaired (the simulation's answers).
    cohort = simulate_cohort(1, seed=14, sessions=(14, 14), scenarios={"rupture_unrepaired": 1})
    for row in cohort.items.itertuples(index=False):
        day = f"2026-{1 + (row.session - 1) // 4:02d}-{5 + 7 * ((row.session - 1) % 4):02d}"
        session = ehr.call(
            "POST", f"/api/v1/patients/{patient['code']}/sessions/", 201, {"date": day, "status": "held"}
        ).json()
        assert session["form_link"]["url"].startswith(settings.SITE_URL + "/f/")
        answers = [{"item": n, "value": int(getattr(row, f"item_{n}"))} for n in range(1, 13)]
        entered = ehr.call(
            "POST", f"/api/v1/sessions/{session['code']}/responses/", 201, {"answers": answers}
        )
        assert entered.json()["source"] == "staff"

    flags = ehr.call("GET", "/api/v1/flags/", 200, patient=patient["code"], acknowledged="false").json()
    assert flags["count"] > 0
    kinds = {f["kind"] for f in flags["results"]}
    assert kinds & {"rupture", "unrepaired"}, kinds
    flag = next(f for f in flags["results"] if f["kind"] in ("rupture", "unrepaired"))
    done = ehr.call(
        "POST",
        f"/api/v1/flags/{flag['code']}/acknowledge/",
        200,
        {"acknowledgement": "discussed", "note": "Talked it through."},
    ).json()
    assert done["acknowledged"] and all(f["acknowledged_by"] == "dana@a.test" for f in done["acknowledged"])
    analysis = ehr.call("GET", f"/api/v1/patients/{patient['code']}/analysis/", 200).json()
    assert len(analysis["sessions"]) == 14
    event = next(e for e in analysis["flags"] if flag["code"] in (e["code"], *e["other_flags"]))
    assert event["acknowledgement"] == "discussed" and not event["counts"]

    job = ehr.call("POST", "/api/v1/exports/", 202, {"report": "session_scores", "format": "csv"}).json()
    for _ in range(50):
        status = ehr.call("GET", f"/api/v1/exports/{job['code']}/", 200).json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "done", status
    download = ehr.http.get(status["download_url"], timeout=30)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert len([r for r in rows if r.get("scale", "total") == "total"]) >= 14

    fhir = ehr.call("GET", f"/api/v1/sessions/{session['code']}/responses/patient/fhir/", 200)
    assert fhir.headers["Content-Type"] == "application/fhir+json"
    assert fhir.json()["subject"]["identifier"]["value"] == "EHR-4711"

    ehr.call("DELETE", f"/api/v1/tokens/{me['token']['code']}/", 204)
    refused = ehr.call("GET", "/api/v1/me/", 401).json()
    assert refused["error"]["code"] == "token_revoked"
