"""The API's cast: the usual people (tests/conftest.py), each with an API token of their clinic,
plus a revoked and an expired token of alice's, and a small world of clinic A data (alice's
patient with an open episode, sessions, a response, a PHQ-9 with a risk answer and so an open
safety alert, a flag and a finished export) and one patient of charlie's in clinic B (also with
an open safety alert), built without running the analysis so every test stays fast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from clinics.models import Clinic, Episode, Membership, Patient, Session
from monitoring.collection.responses import response_create, response_enter
from monitoring.models import ApiToken, ExportJob, Flag, Instrument, Response, SafetyAlert
from monitoring.security.tokens import api_token_create, api_token_revoke
from tests.conftest import finished_export

ALL_FIVES = {n: 5 for n in range(1, 13)}
#: A PHQ-9 of 10 (moderate) whose item 9 (thoughts of self-harm) is "More than half the days".
PHQ9_RISK = {**{n: 1 for n in range(1, 9)}, 9: 2}


@pytest.fixture(autouse=True)
def _fresh_throttle_and_media(settings: Any, tmp_path: Path) -> None:
    """Throttle counts live in the cache, which outlives a test; export files go to a temp dir."""
    cache.clear()
    settings.MEDIA_ROOT = tmp_path / "media"


def make_token(user: Any, clinic: Clinic, **kwargs: Any) -> str:
    return api_token_create(user=user, clinic=clinic, name="test", **kwargs)[1]


def bearer(token: str | None) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}


_CLIENT: list[APIClient] = []


class Api:
    """A test client that speaks JSON with one token (or none).

    One APIClient is shared by every test: building a client's handler loads the middleware, and
    WhiteNoise then indexes every static file (about 80 ms a time). Tokens travel per request and
    cookies are cleared, so nothing leaks from one call to the next.
    """

    def __init__(self, token: str | None) -> None:
        if not _CLIENT:
            _CLIENT.append(APIClient())
        self.client = _CLIENT[0]
        self.token = token

    def __call__(self, method: str, url: str, body: Any = None, **extra: Any) -> Any:
        self.client.cookies.clear()
        call = getattr(self.client, method.lower())
        if method.upper() in ("GET", "DELETE"):
            return call(url, body, **bearer(self.token), **extra)
        return call(url, body, format="json", **bearer(self.token), **extra)

    def get(self, url: str, params: Any = None, **extra: Any) -> Any:
        return self("GET", url, params, **extra)

    def post(self, url: str, body: Any = None, **extra: Any) -> Any:
        return self("POST", url, body, **extra)


@pytest.fixture
def tokens(clinic_a, clinic_b, alice, bob, dana, charlie, erin, sam) -> dict[str, str | None]:
    """One token per role of the permission table (anonymous has none)."""
    revoked_row, revoked = api_token_create(user=alice, clinic=clinic_a, name="old")
    api_token_revoke(token=revoked_row, by=alice)
    expired_row, expired = api_token_create(
        user=alice, clinic=clinic_a, name="short", expires_at=timezone.now() + timedelta(days=1)
    )
    ApiToken.objects.filter(pk=expired_row.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    return {
        "therapist": make_token(alice, clinic_a),
        "colleague": make_token(bob, clinic_a),
        "admin": make_token(dana, clinic_a),
        "other clinic": make_token(erin, clinic_b),
        "other therapist": make_token(charlie, clinic_b),
        "supervisor": make_token(sam, clinic_a),
        "anonymous": None,
        "revoked token": revoked,
        "expired token": expired,
    }


@dataclass
class World:
    patient: Patient
    unepisoded: Patient
    episode: Episode
    answered: Session  # held, with the patient's answers and a flag
    scheduled: Session
    held: Session  # held, no answers yet
    response: Response
    flag: Flag
    job: ExportJob
    spare_token: ApiToken  # alice's, for revoking
    other_patient: Patient  # clinic B
    other_flag: Flag
    alert: SafetyAlert  # open, from the PHQ-9 of the answered session
    other_alert: SafetyAlert  # clinic B


@pytest.fixture
def world(clinic_a, clinic_b, alice, bob, dana, charlie, erin, instrument: Instrument, settings) -> World:
    patient = Patient.objects.create(clinic=clinic_a, label="P.A.", therapist=alice, external_id="EXT-1")
    unepisoded = Patient.objects.create(clinic=clinic_a, label="Q.A.", therapist=alice, is_active=False)
    episode = Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 9, 1))
    answered = Session.objects.create(episode=episode, number=1, date=date(2026, 9, 1), status="held")
    scheduled = Session.objects.create(episode=episode, number=2, date=date(2026, 9, 8))
    held = Session.objects.create(episode=episode, number=3, date=date(2026, 9, 15), status="held")
    response = response_create(session=answered, instrument=instrument, answers=ALL_FIVES, source="staff")
    phq9 = response_enter(session=answered, rater="patient", answers=PHQ9_RISK, user=alice, measure="phq9")
    flag = Flag.objects.create(
        episode=episode, session=answered, scale="total", kind="rupture", magnitude=1.2, explanation="A drop."
    )
    job = finished_export(clinic_a, dana, settings.MEDIA_ROOT)
    spare, _ = api_token_create(user=alice, clinic=clinic_a, name="spare")
    other = Patient.objects.create(clinic=clinic_b, label="P.B.", therapist=charlie, external_id="EXT-1")
    other_episode = Episode.objects.create(patient=other, therapist=charlie, started_on=date(2026, 9, 1))
    other_session = Session.objects.create(
        episode=other_episode, number=1, date=date(2026, 9, 2), status="held"
    )
    response_create(session=other_session, instrument=instrument, answers=ALL_FIVES, source="staff")
    other_phq9 = response_enter(
        session=other_session, rater="patient", answers=PHQ9_RISK, user=charlie, measure="phq9"
    )
    other_flag = Flag.objects.create(
        episode=other_episode,
        session=other_session,
        scale="total",
        kind="decline",
        magnitude=1,
        explanation=".",
    )
    return World(
        patient,
        unepisoded,
        episode,
        answered,
        scheduled,
        held,
        response,
        flag,
        job,
        spare,
        other,
        other_flag,
        SafetyAlert.objects.get(response=phq9),
        SafetyAlert.objects.get(response=other_phq9),
    )


def membership_code(user: Any, clinic: Clinic) -> str:
    return str(Membership.objects.get(user=user, clinic=clinic).code)
