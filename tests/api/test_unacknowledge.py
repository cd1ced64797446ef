"""Undoing an acknowledgement through the API, and the flag's score bound."""

from __future__ import annotations

import pytest

from monitoring.flags.services import episode_flags_refresh
from monitoring.models import Flag
from tests.api.conftest import Api, make_token
from tests.flags.test_flags import add_session

pytestmark = pytest.mark.django_db

OK = {n: 4 for n in range(1, 13)}


@pytest.fixture
def rupture(episode, instrument) -> Flag:
    for number in range(1, 5):
        add_session(episode, instrument, number, OK if number % 2 else {**OK, 3: 5})
    add_session(episode, instrument, 5, {n: 3 for n in range(1, 13)})
    episode_flags_refresh(episode_id=episode.pk)
    return Flag.objects.get(episode=episode, kind="rupture", scale="total")


def test_unacknowledge_reopens_the_event_on_every_scale(rupture, alice, clinic_a):
    api = Api(make_token(alice, clinic_a))
    done = api.post(f"/api/v1/flags/{rupture.code}/acknowledge/", {"acknowledgement": "discussed"})
    assert done.status_code == 200
    acknowledged = {f["code"] for f in done.json()["acknowledged"]}
    undone = api.post(f"/api/v1/flags/{rupture.code}/unacknowledge/")
    assert undone.status_code == 200
    assert {f["code"] for f in undone.json()["reopened"]} == acknowledged
    assert all(f["acknowledgement"] == "" for f in undone.json()["reopened"])
    assert (
        not Flag.objects.filter(episode=rupture.episode, kind="rupture").exclude(acknowledgement="").exists()
    )
    again = api.post(f"/api/v1/flags/{rupture.code}/unacknowledge/")
    assert again.status_code == 200 and again.json()["reopened"] == []
    # Acknowledging works again after the undo.
    assert (
        api.post(f"/api/v1/flags/{rupture.code}/acknowledge/", {"acknowledgement": "discussed"}).status_code
        == 200
    )


def test_a_flag_carries_the_score_its_rule_compared_with(rupture, alice, clinic_a):
    body = Api(make_token(alice, clinic_a)).get(f"/api/v1/flags/{rupture.code}/").json()
    assert body["bound"] == pytest.approx(rupture.detail["baseline"] - rupture.threshold, abs=1e-3)
    assert body["detail"]["score"] <= body["bound"]
